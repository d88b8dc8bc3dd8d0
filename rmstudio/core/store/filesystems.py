"""Is a project on a network or sync folder, where SQLite's WAL mode is unsafe?

WAL keeps its index in shared memory (the ``-shm`` file, memory-mapped), which works only when
every process that opens the database runs on the same machine and the filesystem supports
``mmap`` coherently. Network filesystems do not promise that, and sync clients (Dropbox,
OneDrive, iCloud, Google Drive, Syncthing) copy the database and its ``-wal`` separately, so a
synced copy can be torn. On such folders the project uses the rollback journal instead and the
app shows a warning (SQLite's "WAL" page, section "Disadvantages"; "How To Corrupt", 2.1).
"""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_TYPES = {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "afs", "ncpfs", "9p",
                 "fuse.sshfs", "sshfs", "fuse.rclone", "davfs", "fuse.davfs2", "glusterfs",
                 "fuse.glusterfs", "ceph", "fuse.s3fs", "webdav", "afpfs", "lustre"}
SYNC_FOLDERS = ("dropbox", "onedrive", "icloud drive", "mobile documents", "google drive",
                "googledrive", "my drive", "syncthing", "nextcloud", "owncloud", "pcloud")
MOUNTS = "/proc/self/mounts"


def network_folder_kind(path: Path, mounts: str = MOUNTS) -> str | None:
    """'network folder (nfs)', 'sync folder (Dropbox)' or None for an ordinary local disk."""
    folder = Path(os.path.realpath(Path(path).parent))
    for part in folder.parts:
        lowered = part.lower()
        for name in SYNC_FOLDERS:
            if lowered == name or lowered.startswith(name + " ") or lowered.startswith(name + "-"):
                return f"sync folder ({part})"
    fstype = _mount_type(folder, mounts)
    if fstype and (fstype in NETWORK_TYPES or fstype.split(".")[-1] in NETWORK_TYPES):
        return f"network folder ({fstype})"
    return None


def _mount_type(folder: Path, mounts: str) -> str | None:
    """The type of the longest mount point that contains ``folder`` (Linux; None elsewhere)."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    text = str(folder)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = text == point or text.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type
