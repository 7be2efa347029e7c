"""The resources of one environment: the same keys everywhere, only the classes' arguments differ."""

from resources.catalog.resource import IcebergCatalogResource
from resources.exports import ExportStorage, LocalExportStorage, S3ExportStorage
from resources.landing.local import LandingStorage, LocalLandingStorage
from resources.landing.s3 import S3LandingStorage
from resources.metrics import CloudWatchMetrics, JsonLinesMetrics, MetricsPublisher
from resources.notifications.notifier import Notifier, OutboxNotifier, SesNotifier
from resources.settings import Settings
from resources.spark.compute import ComputeResource
from resources.spark.jobs import SparkJobResource
from resources.spark.session import SparkResource

# locally e-mails go to the outbox directory, so the addresses only label them
LOCAL_SENDER = "lakehouse@localhost"
LOCAL_RECIPIENTS = ("data-team@localhost",)


def spark_job_for(settings: Settings) -> SparkJobResource | None:
    """Where staging steps chosen for Spark run as a submitted job (LAKEHOUSE_SPARK_SUBMIT); None:
    in the Dagster process's own session (local or Spark Connect)."""
    spark = settings.spark
    if spark.submit is None:
        return None
    return SparkJobResource(
        route=spark.submit,
        master=spark.master,
        conf=spark.conf,
        emr_application_id=spark.emr_application_id,
        emr_execution_role_arn=spark.emr_execution_role_arn,
        emr_code_uri=spark.emr_code_uri,
        emr_python_environment_uri=spark.emr_python_environment_uri,
    )


def resources_for(settings: Settings) -> dict:
    """The catalog, compute, landing storage, exports, metrics and notifier of the environment
    `settings` names."""
    if settings.aws is None:
        catalog = IcebergCatalogResource.sql(settings.catalog_uri, settings.warehouse_dir.as_uri())
        landing: LandingStorage = LocalLandingStorage(root=str(settings.landing_dir))
        exports: ExportStorage = LocalExportStorage(root=str(settings.exports_dir))
        metrics: MetricsPublisher = JsonLinesMetrics(
            environment=settings.deployment, directory=str(settings.metrics_dir)
        )
        notifier: Notifier = OutboxNotifier(
            environment=settings.deployment,
            sender=LOCAL_SENDER,
            recipients=list(LOCAL_RECIPIENTS),
            directory=str(settings.outbox_dir),
        )
    else:
        aws = settings.aws
        catalog = IcebergCatalogResource.glue(aws.warehouse_uri, aws.glue_database_prefix, aws.file_io)
        landing = S3LandingStorage(uri=aws.landing_uri)
        exports = S3ExportStorage(uri_prefix=aws.exports_uri)
        metrics = CloudWatchMetrics(environment=settings.deployment, namespace=aws.metrics_namespace)
        notifier = SesNotifier(
            environment=settings.deployment,
            sender=aws.notify_from,
            recipients=list(aws.notify_to),
            ledger_uri=aws.notify_ledger_uri,
        )
    spark = SparkResource(
        master=settings.spark.master, remote=settings.spark.remote, conf=settings.spark.conf
    )
    compute = ComputeResource(
        spark=spark,
        spark_threshold_bytes=settings.spark.threshold_bytes,
        spark_job=spark_job_for(settings),
    )
    return {
        "catalog": catalog,
        "compute": compute,
        "landing_storage": landing,
        "exports": exports,
        "metrics": metrics,
        "notifier": notifier,
    }
