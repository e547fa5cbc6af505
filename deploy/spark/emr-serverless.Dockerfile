# EMR Serverless custom image: the release's Spark with Python 3.11 and ticket-enrich.
# Build from the repository root after `python -m build --wheel`:
#   docker build -f deploy/spark/emr-serverless.Dockerfile -t ticket-enrich-emr .
FROM public.ecr.aws/emr-serverless/spark/emr-7.5.0:latest
USER root
RUN dnf install -y python3.11 python3.11-pip && dnf clean all
COPY dist/ticket_enrich-*.whl /tmp/
# The train extra for `train --engine spark`; PySpark itself comes with the image.
RUN python3.11 -m pip install --no-cache-dir "$(ls /tmp/ticket_enrich-*.whl)[train]" \
        "pyarrow>=14" "pandas>=2.2,<3" && rm /tmp/ticket_enrich-*.whl
USER hadoop:hadoop
