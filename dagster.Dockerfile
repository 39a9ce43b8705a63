# Dagster webserver and daemon: Dagster itself and the run launcher (workers/), no user code
# (that is assets.Dockerfile).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PYTHONPATH=/opt/constellation

# Dependencies first (pinned by constraints.txt), so a code change does not reinstall them.
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt \
        dagster dagster-graphql dagster-webserver dagster-postgres psycopg2-binary \
        dagster-celery "celery[redis]" redis

RUN useradd --system --uid 10001 --create-home constellation \
    && mkdir -p "$DAGSTER_HOME" /var/lib/constellation/artifacts/dagster \
    && chown -R constellation "$DAGSTER_HOME" /var/lib/constellation
COPY --chown=constellation deploy/dagster.yaml deploy/workspace.yaml $DAGSTER_HOME/
# The run launcher the instance names (workers.launcher); workers/app.py is only used by
# the worker image, which has the code.
COPY workers /opt/constellation/workers

USER constellation
WORKDIR $DAGSTER_HOME
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/dagster_home/workspace.yaml"]
