# One image for every Pathway process: the API, the Celery worker and beat, and migrations.
# The build stage makes the wheel (code, diagrams and migrations in it); the image installs
# that wheel alone, so it runs exactly what `pip wheel .` ships. The pages' browser assets are
# bundled in a stage of their own: Node.js is needed to build them, never to run the service.
FROM node:20-slim AS web
WORKDIR /src
COPY web/package.json web/package-lock.json ./web/
RUN npm ci --prefix web --no-audit --no-fund
COPY .bpmnlintrc ./
COPY web/build.mjs ./web/
COPY web/src ./web/src
RUN node web/build.mjs

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY workers ./workers
COPY cli ./cli
COPY bpmn ./bpmn
COPY web/pages ./web/pages
COPY --from=web /src/web/static/dist ./web/static/dist
RUN pip wheel . --no-deps --wheel-dir /wheels

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --system --home /app pathway && chown -R pathway /app
USER pathway
ENV PATHWAY_DATA_DIR=/app/data
EXPOSE 8000
CMD ["pathway", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
