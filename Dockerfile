# The ledger apps' image: `uvicorn healthai.app:app` or `uvicorn travelai.app:app`, and the
# `graphql-ledger` command (run `graphql-ledger migrate` as the tables' owner before a new
# release starts; the apps log in as a member of ledger_serving, see docs/security.md).
FROM python:3.11-slim

WORKDIR /srv/ledger
COPY pyproject.toml README.md alembic.ini ./
COPY graphql_ledger ./graphql_ledger
COPY healthai ./healthai
COPY travelai ./travelai
COPY migrations ./migrations
# Editable, so `graphql-ledger migrate` finds the migrations/ tree next to the code.
RUN pip install --no-cache-dir --editable . \
    && useradd --system --no-create-home ledger
USER ledger

EXPOSE 8000
CMD ["uvicorn", "healthai.app:app", "--host", "0.0.0.0", "--port", "8000"]
