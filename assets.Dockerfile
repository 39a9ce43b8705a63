# User code: the `orchestrator` code location served over gRPC, and the warm run workers
# (`celery -A workers.app worker`, the compose service `worker`) that execute the runs.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PYTHONPATH=/opt/constellation \
    # With compose's `init: true`, tini signals the whole process group on stop.
    TINI_KILL_PROCESS_GROUP=1

WORKDIR /opt/constellation
# Dependencies first (the project's list, pinned by constraints.txt), then the source.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt

RUN useradd --system --uid 10001 --create-home constellation \
    && mkdir -p "$DAGSTER_HOME" /var/lib/constellation/artifacts/dagster /var/lib/constellation/data \
    && chown -R constellation "$DAGSTER_HOME" /var/lib/constellation
COPY --chown=constellation deploy/dagster.yaml $DAGSTER_HOME/
COPY orchestrator ./orchestrator
COPY workers ./workers

USER constellation
EXPOSE 4000
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "orchestrator.definitions"]
