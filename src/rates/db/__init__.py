"""Database access: connections, migrations, dump loading and demo data."""
