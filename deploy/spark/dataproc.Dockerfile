# Dataproc Serverless custom container: Python 3.11 with ticket-enrich; Dataproc mounts its
# own Spark and Java at run time. Build from the repository root after `python -m build --wheel`:
#   docker build -f deploy/spark/dataproc.Dockerfile -t REGION-docker.pkg.dev/PROJECT/ticket-enrich/dataproc:0.1.0 .
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends procps tini \
    && rm -rf /var/lib/apt/lists/*
COPY dist/ticket_enrich-*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/ticket_enrich-*.whl)[train]" \
        "pyarrow>=14" "pandas>=2.2,<3" && rm /tmp/ticket_enrich-*.whl
ENV PYSPARK_PYTHON=/usr/local/bin/python3.11
# Dataproc runs the container as user `spark` (uid 1099).
RUN groupadd -g 1099 spark && useradd -u 1099 -g 1099 -d /home/spark -m spark
USER spark
