"""The Iceberg IO manager and its one commit path."""
