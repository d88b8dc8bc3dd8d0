"""Preference data in and out: the record types, file formats, import, export, demo data."""
