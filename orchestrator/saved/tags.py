"""The run tags that tie a run to its saved pipeline, version and schedule."""

TAG_PIPELINE = "constellation/pipeline"
TAG_PIPELINE_VERSION = "constellation/pipeline-version"
TAG_SCHEDULE = "constellation/schedule"
TAG_SCHEDULED_AT = "constellation/scheduled-at"
TAG_SOURCE = "constellation/source"  # api, pipeline, schedule


def pipeline_tags(name: str, version: int) -> dict[str, str]:
    return {TAG_PIPELINE: name, TAG_PIPELINE_VERSION: str(version)}
