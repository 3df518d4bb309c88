"""The final report: one run's figures, each baseline's, and ours as ratios of the faster
baseline's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from loadtest.runner import RunSummary

LATENCY_KEYS = ("p50", "p90", "p99", "p99.9", "max")


def ratios(ours: RunSummary, baseline: RunSummary) -> dict[str, float | None]:
    """Our figures divided by the baseline's: calls/s (higher is better) and each
    latency percentile (lower is better). None where the baseline's figure is 0."""

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    result = {"calls_per_second": ratio(ours.calls_per_second, baseline.calls_per_second)}
    for key in LATENCY_KEYS:
        result[key] = ratio(ours.latency_ms[key], baseline.latency_ms[key])
    ours_cpu = ours.server.get("cpu_us_per_call")
    base_cpu = baseline.server.get("cpu_us_per_call")
    if ours_cpu and base_cpu:
        result["server_cpu_us_per_call"] = ratio(ours_cpu, base_cpu)
    return result


@dataclass
class Report:
    """A whole ``decide loadtest`` run: settings, our summary, and each baseline's by kind
    (``sync``, ``aio``)."""

    settings: dict[str, Any]
    ours: RunSummary
    baselines: dict[str, RunSummary] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed_calls(self) -> int:
        return sum(self.ours.errors.values())

    @property
    def faster_baseline(self) -> str | None:
        """The kind of the baseline with the most calls/s: the one ratios are against."""
        if not self.baselines:
            return None
        return max(self.baselines, key=lambda kind: self.baselines[kind].calls_per_second)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON values (what ``--json`` prints)."""
        data: dict[str, Any] = {"settings": self.settings, "result": self.ours.as_dict()}
        faster = self.faster_baseline
        if faster is not None:
            data["baselines"] = {kind: s.as_dict() for kind, s in self.baselines.items()}
            data["ratios_against"] = faster
            data["ratios"] = ratios(self.ours, self.baselines[faster])
            data["ratios_by_baseline"] = {
                kind: ratios(self.ours, s) for kind, s in self.baselines.items()
            }
        data["notes"] = self.notes
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_text(self) -> str:
        """The report for people: a table, with a column per baseline and decide's ratio
        to the faster one if measured."""
        s = self.settings
        loop = (
            f"open loop at {s['rate']:,.0f} calls/s"
            if s.get("rate")
            else f"closed loop, {s['concurrency']} calls in flight"
        )
        lines = [
            (
                f"decide loadtest: {self.ours.target}, {loop}, {s['processes']} client "
                f"process{'es' if s['processes'] != 1 else ''}, {s['duration']:g} s "
                f"(after {s['warmup']:g} s warm-up)"
            ),
            f"mix: {_mix(s)}",
            f"writes: {_writes(s)}",
        ]
        faster = self.faster_baseline
        if faster is not None:
            kinds = ", ".join(
                f"{kind} on {s['aio_loop']}" if kind == "aio" and s.get("aio_loop") else kind
                for kind in self.baselines
            )
            lines.append(
                f"baselines: {kinds} ({_processes(s)}); ratios against {faster}, "
                "the faster in this run"
            )
        lines.append("")
        kinds = list(self.baselines)
        header = f"{'':18}{'decide':>12}" + "".join(f"{kind:>12}" for kind in kinds)
        if faster is not None:
            header += f"{'ratio':>9}"
        lines.append(header)
        rows: list[tuple[str, str, float, list[float | None]]] = [
            (
                "calls/s",
                ",.0f",
                self.ours.calls_per_second,
                [b.calls_per_second for b in self.baselines.values()],
            )
        ]
        for key in LATENCY_KEYS:
            others: list[float | None] = [b.latency_ms[key] for b in self.baselines.values()]
            rows.append((f"latency {key} ms", ".2f", self.ours.latency_ms[key], others))
        ours_cpu = self.ours.server.get("cpu_us_per_call")
        if ours_cpu:
            others = [b.server.get("cpu_us_per_call") for b in self.baselines.values()]
            rows.append(("server CPU us/call", ",.0f", ours_cpu, others))
        rows.append(
            (
                "client CPU %",
                ".0f",
                self.ours.client_cpu_percent,
                [b.client_cpu_percent for b in self.baselines.values()],
            )
        )
        for label, fmt, value, others in rows:
            line = f"{label:18}{format(value, fmt):>12}"
            for other in others:
                line += f"{format(other, fmt) if other is not None else '-':>12}"
            if faster is not None:
                other = others[kinds.index(faster)]
                line += f"{value / other:8.2f}x" if other else f"{'-':>9}"
            lines.append(line)
        lines.append("")
        for name, method in self.ours.methods.items():
            latency = method["latency_ms"]
            lines.append(
                f"{name:8} {method['calls']:>10,d} calls {method['calls_per_second']:>10,.1f}/s"
                f"  p50 {latency['p50']:.2f}  p99 {latency['p99']:.2f} ms"
                f"  errors {method['errors']:,d}"
            )
        errors = self.ours.errors
        lines.append(
            "errors: "
            + (
                ", ".join(f"{code} {count:,d}" for code, count in errors.items())
                if errors
                else "none"
            )
            + f" of {self.ours.calls:,d} calls"
        )
        if self.ours.unsent:
            lines.append(
                f"unsent: {self.ours.unsent:,d} calls were due but never sent "
                f"(--max-in-flight reached); the client lagged up to {self.ours.max_lag_ms:,.0f} ms"
            )
        lines += self.notes
        return "\n".join(lines)


def _mix(settings: dict[str, Any]) -> str:
    low, high = settings["placements_per_call"]
    placements = f"{low}" if low == high else f"{low}-{high}"
    track = settings.get("track_ratio") or 0
    mix = f"Decide {100 * (1 - track):.0f}% ({placements} placements)"
    if track:
        mix += f", Track {100 * track:.0f}% ({settings['track_batch']} events/batch)"
    mix += f"; {settings['visitors']:,d} visitors (Zipf s={settings['zipf']:g})"
    seeded = settings.get("seeded")
    if seeded:
        mix += f", profiles seeded ({seeded})"
    return mix


def _writes(settings: dict[str, Any]) -> str:
    if settings.get("writes"):
        return "allowed (decisions recorded as exposures; Track calls and seeding store events)"
    return (
        "none (Decide with preview: no exposure recorded, not counted in "
        "decide_decisions_total; no Track, no seeding; --allow-writes to write)"
    )


def _processes(settings: dict[str, Any]) -> str:
    n = settings.get("baseline_processes", 1)
    return f"{n} process{'es' if n != 1 else ''} each"
