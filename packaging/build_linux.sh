#!/usr/bin/env bash
# Build a stand-alone Linux app folder with PyInstaller, and a tarball that installs it.
#
#   packaging/build_linux.sh [PYTHON]     # default: .venv/bin/python (make install creates it)
#
# Result: dist/rmstudio/ (run dist/rmstudio/rmstudio) and dist/rmstudio-<version>-linux-x86_64.tar.gz,
# which holds that folder, the desktop entry, the icons and install.sh (per-user, no root).
# The torch build installed in PYTHON's environment is the one that ships: install the CPU build
# for a small (~1 GB) app, a CUDA build for NVIDIA GPUs (several GB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
VERSION="$("$PY" -c 'import rmstudio; print(rmstudio.__version__)')"
ARCH="$(uname -m)"

"$PY" -m pip install --quiet "pyinstaller>=6.10"
"$PY" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller \
    packaging/pyinstaller/rmstudio.spec

# A smoke test of the frozen app before it is packed: the CLI answers, and `-m` reaches a module.
QT_QPA_PLATFORM=offscreen dist/rmstudio/rmstudio --help > /dev/null
dist/rmstudio/rmstudio -m rmstudio.cli --help > /dev/null

STAGE="build/linux-stage/rmstudio-$VERSION"
rm -rf "$STAGE" && mkdir -p "$STAGE/icons"
cp -a dist/rmstudio "$STAGE/app"
cp packaging/linux/rmstudio.desktop "$STAGE/"
cp resources/icons/rmstudio.svg resources/icons/rmstudio-*.png "$STAGE/icons/"
cat > "$STAGE/install.sh" <<'INSTALL'
#!/usr/bin/env bash
# Install rmstudio for this user: ~/.local/opt/rmstudio, the `rmstudio` command, menu entry, icons.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${PREFIX:-$HOME/.local}"
rm -rf "$PREFIX/opt/rmstudio" && mkdir -p "$PREFIX/opt" "$PREFIX/bin" "$PREFIX/share/applications"
cp -a "$HERE/app" "$PREFIX/opt/rmstudio"
ln -sf "$PREFIX/opt/rmstudio/rmstudio" "$PREFIX/bin/rmstudio"
for png in "$HERE"/icons/rmstudio-*.png; do
    size="$(basename "$png" .png)"; size="${size#rmstudio-}"
    mkdir -p "$PREFIX/share/icons/hicolor/${size}x${size}/apps"
    cp "$png" "$PREFIX/share/icons/hicolor/${size}x${size}/apps/rmstudio.png"
done
mkdir -p "$PREFIX/share/icons/hicolor/scalable/apps"
cp "$HERE/icons/rmstudio.svg" "$PREFIX/share/icons/hicolor/scalable/apps/rmstudio.svg"
sed "s|^Exec=rmstudio|Exec=$PREFIX/bin/rmstudio|; s|^TryExec=rmstudio|TryExec=$PREFIX/bin/rmstudio|" \
    "$HERE/rmstudio.desktop" > "$PREFIX/share/applications/rmstudio.desktop"
command -v update-desktop-database > /dev/null && update-desktop-database "$PREFIX/share/applications" || true
command -v gtk-update-icon-cache > /dev/null && gtk-update-icon-cache -q "$PREFIX/share/icons/hicolor" || true
echo "installed: $PREFIX/bin/rmstudio (and a menu entry)"
INSTALL
chmod +x "$STAGE/install.sh"
tar -C build/linux-stage -czf "dist/rmstudio-$VERSION-linux-$ARCH.tar.gz" "rmstudio-$VERSION"
echo "built dist/rmstudio/ and dist/rmstudio-$VERSION-linux-$ARCH.tar.gz"
