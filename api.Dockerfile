# Constellation's HTTP API (FastAPI under uvicorn). It validates with the operation catalog
# (orchestrator/) and talks to Dagster only through GraphQL.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/opt/constellation

WORKDIR /opt/constellation
# Dependencies first (the project's list, pinned by constraints.txt), then the source.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt

RUN useradd --system --uid 10001 --create-home constellation
COPY orchestrator ./orchestrator
COPY api ./api

USER constellation
EXPOSE 8000
CMD ["uvicorn", "api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
