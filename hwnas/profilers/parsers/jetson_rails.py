"""Which power rail is a Jetson module's total input, per board generation.

The INA3221 channels on a Jetson measure different things per board. On some, one channel *is* the
module's input (TX1/TX2/Nano/Xavier NX/Orin NX and Nano: ``VDD_IN`` or ``POM_5V_IN``): it already contains
the CPU/GPU/SoC rails, which must never be added to it (jetson_stats issue #51, quoting NVIDIA). AGX Xavier
has no input channel: its rails (GPU, CPU, SOC, CV, VDDRQ, SYS5V) are summed, as jtop and energymon do.
AGX Orin's channels are VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0 (the carrier's 5 V I/O rail, *not* the total:
jetson_stats issue #344) and VDDQ_VDD2_1V8AO; they are summed too, which covers the module's main rails but
not every loss, and the rule says so. Every result names the rule it used.
"""

from __future__ import annotations

from collections.abc import Mapping

# Rails that are the whole module's input: never add anything to them.
TOTAL_INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN")
# Boards without an input rail, recognised by their rail names: (rail set, board, rule text)
_SUM_BOARDS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}), "AGX Xavier"),
    (frozenset({"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"}), "AGX Orin"),
)
SKIP_RAILS = frozenset({"NC", "sum of shunt voltages"})


def total_input_mw(rails_mw: Mapping[str, float]) -> tuple[float | None, str]:
    """(total module input in mW or None, the rule used) for one reading of the rails."""
    rails = {k: v for k, v in rails_mw.items() if k not in SKIP_RAILS}
    if not rails:
        return None, "no power rails in this reading (board without INA3221, or tegrastats run without them)"
    for name in TOTAL_INPUT_RAILS:
        if name in rails:
            others = sorted(set(rails) - {name})
            return float(rails[name]), (
                f"{name} is the module's total input (other rails {others} are inside it and not added)"
            )
    names = set(rails)
    for needed, board in _SUM_BOARDS:
        if needed <= names:
            return float(sum(rails.values())), (
                f"{board}: no total input rail, so the sum of all rails {sorted(rails)}"
                + (
                    " (VIN_SYS_5V0 is the carrier's I/O rail; the sum leaves out module losses)"
                    if board == "AGX Orin"
                    else ""
                )  # fmt: skip
            )
    return None, (
        f"rails {sorted(rails)} include no known total input rail ({', '.join(TOTAL_INPUT_RAILS)}) and match "
        "no board whose rails are summed; not guessing a total"
    )
