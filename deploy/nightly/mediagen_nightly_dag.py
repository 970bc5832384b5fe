"""Airflow DAG: the nightly mediagen run on Dataflow with Airflow's Beam operator.

Copy this file into the DAGs folder of an Airflow with
``apache-airflow-providers-apache-beam`` and ``apache-airflow-providers-google``, and
edit the constants. Each night the same prompt files (new rows or new files appended
by then) go to the same output root: rows whose request key already has media are
``reused`` without any provider call, so only new rows are generated and paid for.

The module imports without Airflow (the project's tests read ``PIPELINE_OPTIONS``);
the DAG object is only built where Airflow is installed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

PROJECT = "my-project"
REGION = "us-central1"
BUCKET = "gs://my-bucket"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/mediagen/mediagen:0.1.0"
MAX_WORKERS = 10
MAX_FAILED_FRACTION = 0.01
"""Share of failed + invalid rows a night may have before the DAG run fails (exit code 3)."""

PIPELINE_OPTIONS: dict[str, Any] = {
    # mediagen's own options
    "input": f"{BUCKET}/prompts/*.jsonl",
    "output": f"{BUCKET}/mediagen",
    "config": f"{BUCKET}/jobs/nightly.yaml",
    "results_mode": "replace",
    "run_id": "nightly-{{ ds_nodash }}",
    "workers": str(MAX_WORKERS),  # one SDK process per VM (experiment below)
    # Beam / Dataflow options
    "project": PROJECT,
    "region": REGION,
    "temp_location": f"{BUCKET}/tmp",
    "staging_location": f"{BUCKET}/staging",
    "sdk_container_image": IMAGE,
    "sdk_location": "container",
    "machine_type": "n2-standard-4",
    "max_num_workers": str(MAX_WORKERS),
    "number_of_worker_harness_threads": "8",
    "experiments": ["no_use_multiple_sdk_containers"],
    "service_account_email": f"mediagen-worker@{PROJECT}.iam.gserviceaccount.com",
}
"""Passed as ``--name=value`` to ``python -m pipelines.generate`` (lists repeat the flag)."""

PY_FILE = f"{BUCKET}/code/flex_template_main.py"
"""deploy/flex_template_main.py, uploaded there: it submits the job and returns; the
operator then follows the Dataflow job to its end (``wait_until_finished``)."""

PY_REQUIREMENTS = ["apache-beam[gcp]==2.77.0", "mediagen[s3]==0.1.0"]
"""The launching virtualenv: the same Beam as the image, and mediagen built with
``python -m build --sdist`` and uploaded to a Python repository the Airflow workers'
pip can read (e.g. Artifact Registry: ``twine upload --repository-url
https://REGION-python.pkg.dev/PROJECT/REPO/ dist/*``)."""

try:  # pragma: no cover - only where Airflow is installed
    from airflow import DAG
    from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
    from airflow.providers.builtin.google.cloud.operators.dataflow import DataflowConfiguration
    try:  # Airflow 3; Airflow 2 keeps it in airflow.operators.bash
        from airflow.providers.standard.operators.bash import BashOperator
    except ImportError:
        from airflow.operators.bash import BashOperator
except ImportError:  # documentation and tests read this module without Airflow
    DAG = None

if DAG is not None:  # pragma: no cover
    with DAG(
        dag_id="mediagen_nightly",
        schedule="0 2 * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,  # never two runs on one output root at once
        default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
        tags=["mediagen"],
    ) as dag:
        generate = BeamRunPythonPipelineOperator(
            task_id="generate",
            runner="DataflowRunner",
            py_file=PY_FILE,
            pipeline_options=PIPELINE_OPTIONS,
            py_requirements=PY_REQUIREMENTS,
            py_interpreter="python3.11",
            py_system_site_packages=False,
            dataflow_config=DataflowConfiguration(
                job_name="mediagen-nightly", project_id=PROJECT, location=REGION, wait_until_finished=True,
            ),
        )
        # The launch exits 0 once Dataflow accepted the job (2: it refused to start); the
        # rows' outcome is in the run's manifest once the job is done: exit 3 when more
        # rows failed (or were invalid) than MAX_FAILED_FRACTION. Needs mediagen (and s3fs for
        # s3://) where Airflow runs tasks: pip install 'mediagen[s3]'.
        check_rows = BashOperator(
            task_id="check_rows",
            bash_command=(
                f"python -m pipelines.run_status {PIPELINE_OPTIONS['output']} {PIPELINE_OPTIONS['run_id']} "
                f"--max_failed_fraction {MAX_FAILED_FRACTION}"
            ),
        )
        generate >> check_rows
