"""Resources: the Iceberg catalog, the landing zone, and (per environment) the AWS services."""
