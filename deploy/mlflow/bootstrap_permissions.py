"""Users, roles and grants of clinrlhf's MLflow tracking server (MLflow 3.17 basic-auth app with its
fine-grained permissions: run, trace and version tiers, and explicit DENY).

Who may do what (the GRANTS table below is the whole policy; `apply` makes the server match it):

- `clinrlhf-pipeline`, the training pipeline's identity, is the only one that writes training runs
  and registers model versions (experiment `clinrlhf`, registered model `clinrlhf-policy`). It is
  denied the compliance experiment, so it cannot forge a change record.
- `clinrlhf-api`, the identity of `clinrlhf serve` and of the governance commands (approve, promote,
  rollback), reads the training runs, moves the `production` alias and tags versions, and writes
  only the compliance experiment `clinrlhf-compliance`, where each promotion's change record and
  CHAI Applied Model Card, and each rollback's change record, live
  (clinrlhf.compliance.promotion_records).
- `ml-engineer` (people) read training runs and versions but never write: the run and version
  tiers hold READ, which caps them whatever experiment grant is added later; the compliance
  experiment is an explicit DENY, which wins over any grant folded with it.
- `compliance-officer` (people) read both experiments and the registry, and write nothing in
  MLflow: their decisions go through clinrlhf, which checks the role and writes the audit trail.

The default permission is NO_PERMISSIONS (deploy/compose/mlflow/basic_auth.ini), so whatever this
table does not grant is refused.

Run it as the MLflow admin (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD of the admin):

    python bootstrap_permissions.py            # experiments, model, roles, grants, service users
    python bootstrap_permissions.py assign alice ml-engineer   # a person (created by the admin)

The service users' names and passwords come from MLFLOW_PIPELINE_USERNAME/PASSWORD and
MLFLOW_API_USERNAME/PASSWORD. It is idempotent: grants that are not in the table are removed.
It needs only MLflow (it runs in the tracking server's image), so the names are repeated here;
tests/deploy/test_mlflow_permissions.py checks them against clinrlhf's own.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

TRAINING_EXPERIMENT = "clinrlhf"  # clinrlhf.lineage.runs.EXPERIMENT
COMPLIANCE_EXPERIMENT = "clinrlhf-compliance"  # clinrlhf.compliance.promotion_records
MODEL = "clinrlhf-policy"  # clinrlhf.compliance.registry.MODEL_NAME
# clinrlhf.lineage.runs tags the training experiment with its kind, an experiment write: set here,
# by the admin, so that the read-only API identity never needs to.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
WORKSPACE = "default"  # where grants live when MLflow's workspaces are off

PIPELINE, API, ENGINEER, OFFICER = "clinrlhf-pipeline", "clinrlhf-api", "ml-engineer", "compliance-officer"


@dataclass(frozen=True)
class Grant:
    resource_type: str  # experiment, registered_model, or a sub-resource tier (run, ...)
    resource: str  # "*", an experiment's name (resolved to its id), or a registered model's name
    permission: str  # READ, USE, EDIT, MANAGE or DENY


GRANTS: dict[str, tuple[Grant, ...]] = {
    PIPELINE: (
        Grant("experiment", TRAINING_EXPERIMENT, "EDIT"),
        Grant("registered_model", MODEL, "EDIT"),
        Grant("experiment", COMPLIANCE_EXPERIMENT, "DENY"),
    ),
    API: (
        Grant("experiment", TRAINING_EXPERIMENT, "READ"),
        Grant("experiment", COMPLIANCE_EXPERIMENT, "EDIT"),
        Grant("registered_model", MODEL, "EDIT"),
    ),
    ENGINEER: (
        Grant("experiment", TRAINING_EXPERIMENT, "READ"),
        Grant("registered_model", MODEL, "READ"),
        Grant("run", "*", "READ"),
        Grant("registered_model_version", "*", "READ"),
        Grant("trace", "*", "READ"),
        Grant("experiment", COMPLIANCE_EXPERIMENT, "DENY"),
    ),
    OFFICER: (
        Grant("experiment", TRAINING_EXPERIMENT, "READ"),
        Grant("experiment", COMPLIANCE_EXPERIMENT, "READ"),
        Grant("registered_model", MODEL, "READ"),
        Grant("run", "*", "READ"),
        Grant("registered_model_version", "*", "READ"),
    ),
}
DESCRIPTIONS = {
    PIPELINE: "the training pipeline: sole writer of training runs and model versions",
    API: "clinrlhf serve and the governance commands: alias, version tags, change records",
    ENGINEER: "ML engineers: read training runs and versions; compliance experiment denied",
    OFFICER: "compliance officers: read everything clinrlhf logs; write nothing in MLflow",
}
# Service users: role -> the environment variables of their name and password.
SERVICE_USERS = {
    PIPELINE: ("MLFLOW_PIPELINE_USERNAME", "MLFLOW_PIPELINE_PASSWORD"),
    API: ("MLFLOW_API_USERNAME", "MLFLOW_API_PASSWORD"),
}


def _experiment_id(client, name: str, kind: tuple[str, str] | None = None) -> str:  # noqa: ANN001
    found = client.get_experiment_by_name(name)
    experiment_id = found.experiment_id if found else client.create_experiment(name)
    if kind is not None:
        client.set_experiment_tag(experiment_id, *kind)
    return experiment_id


def resolve(grants: tuple[Grant, ...], experiment_ids: dict[str, str]) -> set[tuple[str, str, str]]:
    """(resource_type, resource_pattern, permission) as MLflow stores them: experiments by id."""
    return {
        (
            g.resource_type,
            experiment_ids.get(g.resource, g.resource) if g.resource_type == "experiment" else g.resource,
            g.permission,
        )
        for g in grants
    }


def _role(auth, name: str):  # noqa: ANN001, ANN202
    for role in auth.list_roles(WORKSPACE):
        if role.name == name:
            return role
    return auth.create_role(WORKSPACE, name, DESCRIPTIONS[name])


def _reconcile(auth, role, wanted: set[tuple[str, str, str]]) -> None:  # noqa: ANN001
    have = {
        (p.resource_type, p.resource_pattern, p.permission): p for p in auth.list_role_permissions(role.id)
    }
    for key, permission in have.items():
        if key not in wanted:
            auth.remove_role_permission(permission.id)
    for resource_type, pattern, permission_name in sorted(wanted - set(have)):
        auth.add_role_permission(role.id, resource_type, pattern, permission_name)


def _ensure_user(auth, username: str, password: str) -> None:  # noqa: ANN001
    from mlflow.exceptions import MlflowException

    try:
        auth.get_user(username)
    except MlflowException:
        auth.create_user(username, password)
    else:
        auth.update_user_password(username, password)


def assign(auth, username: str, role_name: str) -> None:  # noqa: ANN001
    if role_name not in GRANTS:
        raise SystemExit(f"unknown role {role_name!r}; roles: {', '.join(GRANTS)}")
    role = _role(auth, role_name)
    if all(r.id != role.id for r in auth.list_user_roles(username)):
        auth.assign_role(username, role.id)


def apply(tracking_uri: str, environ: dict[str, str]) -> dict[str, int]:
    """Make the server match GRANTS; returns each role's id."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiments = {
        TRAINING_EXPERIMENT: _experiment_id(client, TRAINING_EXPERIMENT, EXPERIMENT_KIND),
        COMPLIANCE_EXPERIMENT: _experiment_id(client, COMPLIANCE_EXPERIMENT),
    }
    try:
        client.get_registered_model(MODEL)
    except MlflowException:
        client.create_registered_model(MODEL)
    auth = get_app_client("basic-auth", tracking_uri=tracking_uri)
    roles = {}
    for name, grants in GRANTS.items():
        role = _role(auth, name)
        _reconcile(auth, role, resolve(grants, experiments))
        roles[name] = role.id
    for role_name, (user_var, password_var) in SERVICE_USERS.items():
        username, password = environ.get(user_var), environ.get(password_var)
        if not username or not password:
            raise SystemExit(f"set {user_var} and {password_var} (the {role_name} service user)")
        _ensure_user(auth, username, password)
        assign(auth, username, role_name)
    return roles


def main(argv: list[str]) -> int:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise SystemExit("set MLFLOW_TRACKING_URI (and the admin's MLFLOW_TRACKING_USERNAME/PASSWORD)")
    if argv[:1] == ["assign"] and len(argv) == 3:
        from mlflow.server import get_app_client

        assign(get_app_client("basic-auth", tracking_uri=uri), argv[1], argv[2])
        print(f"{argv[1]} has role {argv[2]}")
        return 0
    if argv:
        raise SystemExit("usage: bootstrap_permissions.py [assign USERNAME ROLE]")
    roles = apply(uri, dict(os.environ))
    print("roles: " + ", ".join(f"{name} (id {role_id})" for name, role_id in roles.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
