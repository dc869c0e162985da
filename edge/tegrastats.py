"""Jetson load, memory, temperatures and power from ``tegrastats``, for the box's telemetry.

``tegrastats`` (part of every L4T/JetPack release) prints one line per interval::

    RAM 2679/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [1%@729,0%@729,off,off] EMC_FREQ 0%@2133
    GR3D_FREQ 34%@[305] ... cpu@47.687C gpu@46.812C tj@47.687C VDD_IN 4416mW/4416mW VDD_SOC 1362mW/1362mW

The fields and their spelling changed between releases (JetPack 4 prints ``POM_5V_IN 1022/1022``
without units and ``GPU@29.5C``; JetPack 5 and 6 ``VDD_IN 4416mW/4416mW`` and ``gpu@46.8C``,
5 adds a date in front, Orin prints the GPU clock per GPC as ``@[305,305]``), so every field is
optional and read by pattern; a line with none of them is a :class:`ValueError`. A sensor that
is off reads ``-256C`` and is left out.

:class:`TegrastatsReader` runs ``tegrastats --interval <ms>`` in the background and keeps the
newest sample; on a machine without it (a PC, CI) it is simply absent.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CPU_CORE = re.compile(r"^(\d+)%(?:@\d+)?$")
_GPU = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
#: ``NAME 4416mW/4416mW`` (JetPack 5, 6) or ``NAME 1022/1022`` (JetPack 4, milliwatts without unit).
_RAIL = re.compile(r"\b((?:VDD|VIN|POM)_[A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?")
#: The board's input rail, when it has one: the whole module's power draw.
_INPUT_RAILS = ("VDD_IN", "VIN_SYS_5V0", "POM_5V_IN")
#: Sensors that read this are switched off.
_SENSOR_OFF_C = -256.0


@dataclass(frozen=True)
class TegraStats:
    """One ``tegrastats`` line. Loads in percent, memory in MB, temperatures in °C, power in mW."""

    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    cpu_load_pct: list[int | None] = field(default_factory=list)  # per core; None: core off
    gpu_load_pct: int | None = None
    gpu_freq_mhz: int | None = None
    emc_load_pct: int | None = None
    temperatures_c: dict[str, float] = field(default_factory=dict)  # sensor name (lower case) -> °C
    rails_mw: dict[str, int] = field(default_factory=dict)  # rail -> instantaneous mW

    @property
    def power_mw(self) -> int | None:
        """The module's draw: its input rail, else the sum of the rails it reports."""
        for rail in _INPUT_RAILS:
            if rail in self.rails_mw:
                return self.rails_mw[rail]
        return sum(self.rails_mw.values()) if self.rails_mw else None

    @property
    def cpu_mean_load_pct(self) -> float | None:
        online = [c for c in self.cpu_load_pct if c is not None]
        return round(sum(online) / len(online), 1) if online else None


def parse_tegrastats(line: str) -> TegraStats:
    """Parse one ``tegrastats`` line; ValueError (quoting it) when nothing in it is recognised."""
    ram, swap, cpu = _RAM.search(line), _SWAP.search(line), _CPU.search(line)
    gpu, emc = _GPU.search(line), _EMC.search(line)
    cores: list[int | None] = []
    if cpu:
        for part in cpu.group(1).split(","):
            core = _CPU_CORE.match(part.strip())
            cores.append(int(core.group(1)) if core else None)  # "off" or unknown: not counted
    temperatures = {
        name.lower(): float(value)
        for name, value in _TEMP.findall(line)
        if float(value) > _SENSOR_OFF_C and not name.isdigit()
    }
    rails = {name: int(now) for name, now, _average in _RAIL.findall(line)}
    freq = None
    if gpu and gpu.group(2):
        freq = max(int(f) for f in gpu.group(2).split(",") if f)
    stats = TegraStats(
        ram_used_mb=int(ram.group(1)) if ram else None,
        ram_total_mb=int(ram.group(2)) if ram else None,
        swap_used_mb=int(swap.group(1)) if swap else None,
        cpu_load_pct=cores,
        gpu_load_pct=int(gpu.group(1)) if gpu else None,
        gpu_freq_mhz=freq,
        emc_load_pct=int(emc.group(1)) if emc else None,
        temperatures_c=temperatures,
        rails_mw=rails,
    )
    if stats == TegraStats():
        raise ValueError(f"not a tegrastats line: {line[:120]!r}")
    return stats


class TegrastatsReader:
    """``tegrastats`` in the background; :meth:`latest` is the newest sample (None before the first).

    reader = TegrastatsReader.start_if_available()   # None on a machine without tegrastats
    stats = reader.latest() if reader else None
    reader.stop()
    """

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self._latest: TegraStats | None = None
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self.bad_lines = 0

    @classmethod
    def start_if_available(
        cls, interval_ms: int = 1000, binary: str = "tegrastats"
    ) -> TegrastatsReader | None:
        path = shutil.which(binary)
        if path is None:
            return None
        reader = cls([path, "--interval", str(interval_ms)])
        reader.start()
        return reader

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                stats = parse_tegrastats(line)
            except ValueError:
                self.bad_lines += 1
                if self.bad_lines == 1:  # once: a format this parser does not know yet
                    log.warning("tegrastats printed a line this build cannot read: %r", line[:200])
                continue
            with self._lock:
                self._latest = stats

    def latest(self) -> TegraStats | None:
        with self._lock:
            return self._latest

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)
