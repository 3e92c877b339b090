"""`clinrlhf lineage` reaches past the snapshot to the ingestion batch and its k-anonymity."""

from __future__ import annotations

import mlflow

from clinrlhf.lineage.chain import describe, load_chain, read_ingestion


def test_the_chain_ends_at_the_ingestion_batch_when_the_run_logged_it(sample) -> None:
    run_id = sample.good.pipeline_run_id
    chain = load_chain(sample.client, run_id)
    assert read_ingestion(sample.client, run_id) == {}  # a run that logged no batch report
    assert not any("ingestion batch" in line for line in describe(chain))

    deid = {"rules": {"name": "clinrlhf-default", "version": "2.0.0"}, "bundles": 12, "resources_in": 80}
    k = {"k_after_suppression": 6, "min_k": 5, "suppressed": 1, "records": 12}
    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict(deid, "deid/report.json")
        mlflow.log_dict(k, "deid/k_anonymity.json")
    lines = describe(chain, read_ingestion(sample.client, run_id))
    assert "ingestion batch: 12 bundles, 80 resources de-identified with clinrlhf-default 2.0.0" in "\n".join(
        lines
    )
    assert any("k-anonymity: k 6 (min k 5, 1 of 12 patients suppressed)" in line for line in lines)
