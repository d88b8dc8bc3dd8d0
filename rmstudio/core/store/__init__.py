"""The project file: opening and checking it, its schema and migrations, writes, backups."""
