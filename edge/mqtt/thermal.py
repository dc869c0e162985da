"""CPU and GPU temperatures from Linux thermal zones, where the kernel exposes them.

``/sys/class/thermal/thermal_zone*/type`` names the sensor and ``temp`` holds
millidegrees Celsius. Jetson boards name theirs ``CPU-therm`` and ``GPU-therm``;
x86 laptops ``x86_pkg_temp``; many ARM boards ``cpu-thermal``. An unreadable or
missing zone is simply absent (containers and VMs often have none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

THERMAL_ROOT = Path("/sys/class/thermal")

_CPU_NAMES = ("cpu", "x86_pkg_temp", "soc", "tcpu")
_GPU_NAMES = ("gpu",)


@dataclass(frozen=True)
class Temperatures:
    cpu_c: float | None
    gpu_c: float | None


def read_temperatures(root: Path = THERMAL_ROOT) -> Temperatures:
    cpu: list[float] = []
    gpu: list[float] = []
    try:
        zones = sorted(root.glob("thermal_zone*"))
    except OSError:
        zones = []
    for zone in zones:
        try:
            name = (zone / "type").read_text().strip().lower()
            celsius = int((zone / "temp").read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
        if not -40.0 <= celsius <= 150.0:
            continue  # disconnected sensors report nonsense such as -273 or 255
        if any(n in name for n in _GPU_NAMES):
            gpu.append(celsius)
        elif any(n in name for n in _CPU_NAMES):
            cpu.append(celsius)
    # The hottest zone is what throttling follows.
    return Temperatures(cpu_c=max(cpu) if cpu else None, gpu_c=max(gpu) if gpu else None)
