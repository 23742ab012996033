"""The Service that exposes a job's ports, and the Ingress in front of it for ``serviceType: ingress``."""
from __future__ import annotations

from ..model import JobSpec, OwnerRef, PortSpec, SubmitContext
from . import names
from .common import object_meta

SERVICE_KINDS = {
    "nodeport": "NodePort",
    "loadbalancer": "LoadBalancer",
    "clusterip": "ClusterIP",
    "portforward": "ClusterIP",
    "ingress": "ClusterIP",
}


def make_service(spec: JobSpec, ctx: SubmitContext, owner: OwnerRef | None) -> dict | None:
    if not spec.service_type or not spec.ports:
        return None
    service_type = SERVICE_KINDS[spec.service_type]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(ctx, spec.project, ctx.name, owner),
        "spec": {
            "type": service_type,
            "selector": {"release": ctx.name},
            "ports": [_service_port(port, service_type) for port in spec.ports],
        },
    }


def _service_port(port: PortSpec, service_type: str) -> dict:
    entry = {
        # The chart's naming; names are required once a Service has more than one port.
        "name": f"{port.container}-port",
        "protocol": "TCP",
        "port": port.external or port.container,
        "targetPort": port.container,
    }
    if service_type == "NodePort" and port.external is not None and not port.auto_generate:
        entry["nodePort"] = port.external
    return entry


def make_ingress(spec: JobSpec, ctx: SubmitContext, owner: OwnerRef | None) -> dict | None:
    if spec.service_type != "ingress" or not spec.ports:
        return None
    base = names.ingress_path(spec.project, ctx.name)
    several = len(spec.ports) > 1
    paths = []
    for port in spec.ports:
        number = port.external or port.container
        paths.append(
            {
                # One port: /<project>-<name>; several: /<project>-<name>-<port>, as the CLI's chart did.
                "path": f"{base}-{number}" if several else base,
                "pathType": "Prefix",
                "backend": {"service": {"name": ctx.name, "port": {"number": number}}},
            }
        )
    ingress_spec: dict = {"rules": [{"http": {"paths": paths}}]}
    if ctx.ingress_class:
        ingress_spec["ingressClassName"] = ctx.ingress_class
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": object_meta(ctx, spec.project, ctx.name, owner),
        "spec": ingress_spec,
    }
