# One image for every Pathway process: the API, the Celery worker and beat, and migrations.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY workers ./workers
COPY cli ./cli
COPY bpmn ./bpmn
RUN pip install -e . && useradd --system --home /app pathway && chown -R pathway /app
USER pathway
ENV PATHWAY_DATA_DIR=/app/data
EXPOSE 8000
CMD ["pathway", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
