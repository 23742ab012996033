"""Token auth mode beside header mode (issue 9's benchmark): what a cached token review costs a seed submit.

Two services of the same gunicorn layout against the same API server, measured in turns in the same run:
- **header**: the configuration's own service (``RA-USER`` on trust, the kit's admin certificate acts);
- **token**: a second service with ``RUNAI_SUBMIT_AUTH_MODE=token``, its own credentials a ServiceAccount token
  with the least-privilege discovery rights of ``deploy/base/rbac.yaml`` (token mode refuses a client
  certificate), and every submit carrying a caller's ServiceAccount token (``Authorization: Bearer``) whose
  ClusterRole lets it create RunaiJobs. The warm-up caches the caller's review, so the measured submits cost
  no review round trip: what is left is the per-request work of token mode (the cache lookup, the caller's
  headers on the create).

Target (issue 9): token p50 within 10 % of header p50 at concurrency 1. Both are measured in alternating
halves (header, token, header, token) so that a change in the machine's load hits both alike.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..admin import AdminError
from ..loadgen import LoadResult
from . import Ratio

if TYPE_CHECKING:
    from ..runner import Bench

TOKEN_P50_RATIO_MAX = 1.1
SYSTEM_NAMESPACE = "runai-submit-bench-system"
SERVICE_ACCOUNT = "runai-submit"      # the token service's own identity (discovery only)
CALLER_ACCOUNT = "bench-caller"       # the researcher whose token every measured submit carries
RBAC = "/apis/rbac.authorization.k8s.io/v1"


class TokenVsHeader:
    """Seed submits in token mode (cached review) beside header mode, at concurrency 1."""

    name = "auth"
    title = "token auth mode (cached review) beside header mode, seed job, concurrency 1"

    def run(self, bench: Bench) -> dict[str, Any]:
        if bench.api.kind != "kit":
            bench.say("  auth: skipped (needs the kit's control plane: ServiceAccount tokens and RBAC)")
            return {"kind": "auth", "title": self.title, "skipped": "needs the kit", "ratios": []}
        n = bench.plan.counts["seed"]
        service_token, caller_token = self._identities(bench)
        kubeconfig = self._token_kubeconfig(bench, service_token)
        token_service = bench.start_service(env={"RUNAI_SUBMIT_AUTH_MODE": "token",
                                                 "RUNAI_SUBMIT_KUBECONFIG": kubeconfig}, name="token")
        bearer = {"Authorization": f"Bearer {caller_token}"}
        try:
            bench.warm_up(token_service, bearer, label="warmup-token")
            sides: dict[str, list[dict[str, Any]]] = {"header": [], "token": []}
            for number, half in enumerate((n // 2, n - n // 2)):
                for side in ("header", "token"):
                    project = bench.project(f"auth-{side}{number}")
                    if side == "header":
                        work = bench.submits("seed", project)
                    else:
                        work = bench.submits("seed", project, service=token_service, headers=bearer)
                    bench.settle()
                    endpoint = bench.service.endpoint if side == "header" else token_service.endpoint
                    probe = None if side == "header" else bench.probe_for(token_service)
                    sides[side].append(bench.measure(endpoint, work, half, 1, probe=probe))
            bench.release()
        finally:
            token_service.stop()
        header, token = _merged(sides["header"]), _merged(sides["token"])
        bench.say(f"  auth     c=1   header {header['per_second']:7.1f}/s p50 {header['p50_ms']:6.2f} ms CPU "
                  f"{header['cpu_ms']:5.2f} ms | token {token['per_second']:7.1f}/s p50 {token['p50_ms']:6.2f} ms "
                  f"CPU {token['cpu_ms']:5.2f} ms | other load {max(header['other_busy_pct'], token['other_busy_pct']):.0f} %"
                  + "".join(f" | {side} ERRORS {v['errors']}" for side, v in (("header", header), ("token", token))
                            if v["ok"] != v["requests"]))
        ratios = [
            Ratio(self.name, "p50", "token mode p50 / header mode p50 at concurrency 1 (cached review)",
                  token["p50_ms"], header["p50_ms"], "ms", "<=", TOKEN_P50_RATIO_MAX, bench.api.real_floor),
        ]
        return {"kind": "auth", "title": self.title, "requests": n, "header": header, "token": token,
                "cpu_ratio": round(token["cpu_ms"] / header["cpu_ms"], 3) if header["cpu_ms"] else None,
                "ratios": [r.to_dict() for r in ratios]}

    # --- identities on the kit -----------------------------------------------------------------------

    def _identities(self, bench: Bench) -> tuple[str, str]:
        """Tokens of the service's own ServiceAccount and of the caller, with their (cluster-wide) rights."""
        admin = bench.admin
        admin.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": SYSTEM_NAMESPACE}}, expect=(201, 409))
        rules = {
            # deploy/base/rbac.yaml: the token-mode service only discovers projects.
            SERVICE_ACCOUNT: [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}],
            # What a seed submit needs of the caller (deploy/base/rbac.yaml's researcher, cluster-wide here, as
            # every measured run has a project of its own).
            CALLER_ACCOUNT: [
                {"apiGroups": ["run.ai"], "resources": ["runaijobs"], "verbs": ["create", "get", "list", "delete"]},
                # the warm-up submits the maximal job too
                {"apiGroups": [""], "resources": ["persistentvolumeclaims", "services"],
                 "verbs": ["create", "get", "list", "delete"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
                 "verbs": ["create", "get", "list", "delete"]},
            ],
        }
        tokens = []
        for account, account_rules in rules.items():
            role = f"runai-submit-bench-{account}"
            admin.request("POST", f"{RBAC}/clusterroles", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
                "rules": account_rules}, expect=(201, 409))
            admin.request("POST", f"{RBAC}/clusterrolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": SYSTEM_NAMESPACE}]},
                expect=(201, 409))
            path = f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts"
            admin.request("POST", path, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
                          expect=(201, 409))
            _, review = admin.request("POST", f"{path}/{account}/token", {
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600}})
            token = (review or {}).get("status", {}).get("token")
            if not token:
                raise AdminError(f"no token for ServiceAccount {account}: {review}")
            tokens.append(token)
        return tokens[0], tokens[1]

    @staticmethod
    def _token_kubeconfig(bench: Bench, token: str) -> str:
        """The kit's kubeconfig with the service's token instead of the admin's client certificate."""
        import yaml

        admin_config = yaml.safe_load(Path(bench.api.kubeconfig).read_text())
        context = next(c for c in admin_config["contexts"] if c["name"] == admin_config["current-context"])
        cluster = next(c for c in admin_config["clusters"] if c["name"] == context["context"]["cluster"])
        document = {
            "apiVersion": "v1", "kind": "Config", "current-context": "token",
            "clusters": [{"name": "kit", "cluster": cluster["cluster"]}],
            "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
            "contexts": [{"name": "token", "context": {"cluster": "kit", "user": SERVICE_ACCOUNT}}],
        }
        path = bench.tmp / "kubeconfig-token"
        path.write_text(json.dumps(document))
        return str(path)


def _merged(halves: list[dict[str, Any]]) -> dict[str, Any]:
    """Two measured halves as one: latencies pooled, rates and CPU over the whole."""
    latencies = sorted(x for h in halves for x in h["_latencies_ms"])
    ok = sum(h["ok"] for h in halves)
    seconds = sum(h["seconds"] for h in halves)
    pooled = LoadResult(sum(h["requests"] for h in halves), ok, {}, seconds, [x / 1000 for x in latencies])
    cpu_s = sum(h["cpu_s"]["service"] for h in halves)
    return {
        "requests": pooled.n, "ok": ok, "errors": [h["errors"] for h in halves if h["errors"]],
        "per_second": round(pooled.rate, 2), "p50_ms": round(pooled.pct(0.5), 3),
        "p95_ms": round(pooled.pct(0.95), 3), "p99_ms": round(pooled.pct(0.99), 3),
        "cpu_ms": round(cpu_s * 1000 / max(1, ok), 3),
        "other_busy_pct": round(statistics.fmean(h["other_busy_pct"] for h in halves), 1),
        "halves": [{k: v for k, v in h.items() if k != "_latencies_ms"} for h in halves],
    }
