"""The job's workload: a RunaiJob or a batch/v1 Job, with one pod template and one container."""
from __future__ import annotations

from ..model import EnvVar, JobSpec, SubmitContext
from . import names
from .common import format_number, job_labels, object_meta
from .podsecurity import secure_pod

GPU_RESOURCE = "nvidia.com/gpu"


def make_workload(spec: JobSpec, ctx: SubmitContext) -> dict:
    """The workload manifest; it is created first and so reserves the job's name."""
    meta = object_meta(ctx, spec.project, ctx.name)
    if spec.interactive:
        # Run:AI's scheduler reads the job's priority class from this workload label.
        meta["labels"]["priorityClassName"] = "interactive-preemptible" if spec.preemptible else "build"
    meta["annotations"] = {"user": ctx.user, **dict(ctx.annotations)}
    job_spec: dict = {}
    if spec.interactive:
        job_spec["backoffLimit"] = 0
        job_spec["completions"] = 1
    else:
        if spec.backoff_limit is not None:
            job_spec["backoffLimit"] = spec.backoff_limit
        if spec.completions is not None:
            job_spec["completions"] = spec.completions
        if spec.parallelism is not None:
            job_spec["parallelism"] = spec.parallelism
    if spec.ttl_after_finish is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_after_finish
    job_spec["template"] = {
        "metadata": {"labels": job_labels(ctx, spec.project), "annotations": _pod_annotations(spec, ctx)},
        "spec": make_pod_spec(spec, ctx),
    }
    return {"apiVersion": ctx.workload_api_version, "kind": ctx.workload_kind, "metadata": meta, "spec": job_spec}


def _pod_annotations(spec: JobSpec, ctx: SubmitContext) -> dict[str, str]:
    annotations = {"user": ctx.user}
    if 0 < spec.gpu < 1:
        annotations["gpu-fraction"] = format_number(spec.gpu)
    if spec.elastic:
        annotations["elastic"] = "true"
    return annotations


def make_pod_spec(spec: JobSpec, ctx: SubmitContext) -> dict:
    pod: dict = {
        "schedulerName": ctx.scheduler_name,
        "restartPolicy": "Never",
        "containers": [make_container(spec, ctx)],
    }
    volumes = _volumes(spec, ctx)
    if volumes:
        pod["volumes"] = volumes
    if spec.node_type:
        pod["nodeSelector"] = {"run.ai/type": spec.node_type}
    if spec.host_ipc:
        pod["hostIPC"] = True
    if spec.host_network:
        pod["hostNetwork"] = True
    return secure_pod(pod, ctx.pod_security)


def make_container(spec: JobSpec, ctx: SubmitContext) -> dict:
    container: dict = {"name": ctx.name, "image": spec.image, "imagePullPolicy": spec.image_pull_policy}
    if spec.command:
        container["command"] = list(spec.command)
    if spec.arguments:
        container["args"] = list(spec.arguments)
    env = _env(spec)
    if env:
        container["env"] = env
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if spec.stdin:
        container["stdin"] = True
    if spec.tty:
        container["tty"] = True
    if spec.ports:
        container["ports"] = [{"containerPort": port.container, "protocol": "TCP"} for port in spec.ports]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    mounts = _volume_mounts(spec)
    if mounts:
        container["volumeMounts"] = mounts
    if spec.prevent_privilege_escalation:
        container["securityContext"] = {"allowPrivilegeEscalation": False}
    return container


def _env(spec: JobSpec) -> list[dict]:
    env = [_env_entry(variable) for variable in spec.environment]
    if spec.create_home_dir and not any(variable.name == "HOME" for variable in spec.environment):
        env.append({"name": "HOME", "value": names.HOME_DIR})
    return env


def _env_entry(variable: EnvVar) -> dict:
    if variable.secret_name is not None:
        return {
            "name": variable.name,
            "valueFrom": {"secretKeyRef": {"name": variable.secret_name, "key": variable.secret_key}},
        }
    return {"name": variable.name, "value": variable.value}


def _resources(spec: JobSpec) -> dict:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.cpu is not None:
        requests["cpu"] = format_number(spec.cpu)
    if spec.cpu_limit is not None:
        limits["cpu"] = format_number(spec.cpu_limit)
    if spec.memory:
        requests["memory"] = spec.memory
    if spec.memory_limit:
        limits["memory"] = spec.memory_limit
    if spec.gpu >= 1:
        limits[GPU_RESOURCE] = format_number(spec.gpu)
    resources = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _volumes(spec: JobSpec, ctx: SubmitContext) -> list[dict]:
    volumes: list[dict] = []
    for index, pvc in enumerate(spec.pvcs):
        claim = pvc.claim_name if not pvc.is_new else names.pvc_name(ctx.name, index)
        volumes.append({"name": names.pvc_volume_name(index), "persistentVolumeClaim": {"claimName": claim}})
    for index, volume in enumerate(spec.volumes):
        volumes.append({"name": names.host_path_volume_name(index), "hostPath": {"path": volume.source_path}})
    if spec.large_shm:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    if spec.create_home_dir:
        volumes.append({"name": "runai-home", "emptyDir": {}})
    return volumes


def _volume_mounts(spec: JobSpec) -> list[dict]:
    mounts: list[dict] = []
    for index, pvc in enumerate(spec.pvcs):
        mounts.append(_mount(names.pvc_volume_name(index), pvc.path, pvc.read_only))
    for index, volume in enumerate(spec.volumes):
        mounts.append(_mount(names.host_path_volume_name(index), volume.target_path, volume.read_only))
    if spec.large_shm:
        mounts.append(_mount("dshm", names.SHM_DIR, False))
    if spec.create_home_dir:
        mounts.append(_mount("runai-home", names.HOME_DIR, False))
    return mounts


def _mount(name: str, path: str, read_only: bool) -> dict:
    mount = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount
