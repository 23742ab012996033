"""The ``runai-submit`` command: ``serve`` the API, or ``render`` a job's manifests without any cluster."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .errors import ConfigError, ServiceError
from .model import OwnerRef, SubmitContext


def render_command(path: str, user: str, namespace: str | None, workload_kind: str, scheduler: str,
                   ingress_class: str, policy_file: str | None = None, pod_security: str = "privileged") -> int:
    """Print the manifests a job would create, as YAML documents in creation order (for review or GitOps).

    The job passes the same checks as a submit (``service.submit.check_job``): the admin policy's defaults
    and rules (``--policy``, else ``RUNAI_SUBMIT_POLICY_FILE``) and the Pod Security level the namespace
    enforces (``--pod-security``; a ``restricted`` one also changes how the pod is rendered).
    """
    from .config import Settings
    from .render import render_job
    from .render.names import generated_name
    from .service.policy import PolicyStore
    from .service.submit import check_job

    try:
        settings = Settings.load()
        policy = PolicyStore(settings.policy_file if policy_file is None else policy_file, 3600).current()
    except ConfigError as exc:
        print("error: cannot use the settings or the policy file", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"error: {path} is not JSON (not UTF-8 text: {exc.reason})", file=sys.stderr)
        return 2

    def enforced(project: str) -> tuple[str, str]:
        return namespace or settings.namespace_for(project), pod_security

    bare = False
    try:
        payload = json.loads(text)
        if isinstance(payload, dict) and "job" not in payload:
            payload, bare = {"job": payload}, True  # a bare job object is fine on the command line
        valid = check_job(payload, policy, enforced)
    except ValueError as exc:
        print(f"error: {path} is not JSON: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for problem in exc.errors:
            # a bare job's fields are at the top of its file: /gpu, not /job/gpu
            field = problem.field[len("/job"):] if bare and problem.field.startswith("/job/") else problem.field
            print(f"  {field}: {problem.message}", file=sys.stderr)
        return 2
    spec = valid.spec
    name = spec.name or generated_name(spec.job_name_prefix)
    api_version = "run.ai/v1" if workload_kind == "RunaiJob" else "batch/v1"
    ctx = SubmitContext(name=name, namespace=enforced(spec.project)[0], user=user,
                        workload_api_version=api_version, workload_kind=workload_kind,
                        scheduler_name=scheduler or settings.scheduler_name,
                        ingress_class=ingress_class or settings.ingress_class, pod_security=pod_security)
    # The owner's uid exists only once the workload is created; a placeholder keeps the shape reviewable.
    owner = OwnerRef(api_version, workload_kind, name, "<uid of the workload>")
    if valid.defaulted:
        print(f"# defaults of the policy filled in: {', '.join(valid.defaulted)}", file=sys.stderr)
    yaml.safe_dump_all(render_job(spec, ctx, owner), sys.stdout, sort_keys=False)
    return 0


def serve_command(bind: str | None, workers: int | None) -> int:
    """Run gunicorn with gunicorn.conf.py's settings (the same as ``make run``)."""
    from gunicorn.app.wsgiapp import run

    argv = ["gunicorn", "wsgi:app" if Path("wsgi.py").exists() else "runai_submit.app:create_app()"]
    config = Path("gunicorn.conf.py")
    if config.exists():
        argv += ["-c", str(config)]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    sys.argv = argv
    run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runai-submit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API with gunicorn")
    serve.add_argument("--bind", help="host:port (default from RUNAI_SUBMIT_BIND / RUNAI_SUBMIT_PORT)")
    serve.add_argument("--workers", type=int)
    render = commands.add_parser("render", help="print the manifests of a job as YAML, without a cluster")
    render.add_argument("job", help="a JSON file with {\"job\": {...}} or a bare job object; - for stdin")
    render.add_argument("--user", default="runai-submit", help="the RA-USER to record (default: runai-submit)")
    render.add_argument("--namespace", help="override the project's conventional namespace")
    render.add_argument("--kind", choices=["RunaiJob", "Job"], default="RunaiJob", help="workload kind")
    render.add_argument("--scheduler", default="", help="pod schedulerName")
    render.add_argument("--ingress-class", default="", help="ingressClassName of the Ingress")
    render.add_argument("--policy", metavar="FILE",
                        help="the admin policy file to apply (default: RUNAI_SUBMIT_POLICY_FILE; '' for none)")
    render.add_argument("--pod-security", choices=["privileged", "baseline", "restricted"], default="privileged",
                        help="the Pod Security level the namespace enforces (default: privileged, as with no label)")
    args = parser.parse_args(argv)
    if args.command == "render":
        return render_command(args.job, args.user, args.namespace, args.kind, args.scheduler, args.ingress_class,
                              args.policy, args.pod_security)
    return serve_command(args.bind, args.workers)


if __name__ == "__main__":
    sys.exit(main())
