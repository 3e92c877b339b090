"""What trainers log through. Trainers never import mlflow: they call a Tracker, so tests can pass a
RecordingTracker and non-zero ranks of a distributed run can pass a NullTracker."""

from __future__ import annotations

from typing import Protocol


class Tracker(Protocol):
    def log_params(self, params: dict[str, object]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_dict(self, dictionary: dict, artifact_file: str) -> None: ...


class NullTracker:
    def log_params(self, params: dict[str, object]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_dict(self, dictionary: dict, artifact_file: str) -> None:
        pass


class RecordingTracker:
    """Keeps everything in memory: for tests and for building report curves."""

    def __init__(self) -> None:
        self.params: dict[str, object] = {}
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.tags: dict[str, str] = {}
        self.dicts: dict[str, dict] = {}

    def log_params(self, params: dict[str, object]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def log_dict(self, dictionary: dict, artifact_file: str) -> None:
        self.dicts[artifact_file] = dict(dictionary)

    def series(self, name: str) -> list[float]:
        return [m[name] for _, m in self.metrics if name in m]


class MLflowTracker:
    """Logs to the active MLflow run (or the run id given)."""

    def __init__(self, run_id: str | None = None) -> None:
        import mlflow

        self._mlflow, self._run_id = mlflow, run_id

    def log_params(self, params: dict[str, object]) -> None:
        self._mlflow.log_params({k: str(v) for k, v in params.items()}, run_id=self._run_id)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step, run_id=self._run_id)

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._mlflow.set_tag(key, value)

    def log_dict(self, dictionary: dict, artifact_file: str) -> None:
        self._mlflow.log_dict(dictionary, artifact_file, run_id=self._run_id)
