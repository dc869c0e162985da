"""tegrastats lines as JetPack 4, 5 and 6 print them (from NVIDIA's L4T documentation and
boards' output), and the background reader on a stand-in binary (there is no Jetson here)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from edge.tegrastats import TegrastatsReader, parse_tegrastats
from tests.edge.mqtt.support import sink_config
from tests.support.mosquitto import MosquittoBroker

#: Orin Nano, JetPack 6 (L4T 36): rails with units, GPU clock per GPC in brackets.
ORIN_NANO_JP6 = (
    "RAM 2679/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [1%@729,0%@729,0%@729,0%@729,off,off] "
    "EMC_FREQ 0%@2133 GR3D_FREQ 34%@[305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 "
    "cpu@47.687C soc2@46.25C soc0@46.031C gpu@46.812C tj@47.687C soc1@45.937C "
    "VDD_IN 4416mW/4416mW VDD_CPU_GPU_CV 481mW/481mW VDD_SOC 1362mW/1362mW"
)
#: AGX Orin, JetPack 5 (L4T 35): a date in front, two GPCs, a switched-off sensor (-256C).
AGX_ORIN_JP5 = (
    "08-29-2023 10:45:12 RAM 3201/30536MB (lfb 6581x4MB) SWAP 0/15268MB (cached 0MB) "
    "CPU [2%@729,1%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 61%@[611,611] "
    "VIC_FREQ 729 APE 174 CV0@-256C CPU@44.25C Tboard@33C SOC2@41.906C Tdiode@34.25C SOC0@41.968C CV1@-256C "
    "GPU@40.75C tj@44.25C SOC1@40.5C CV2@-256C VDD_GPU_SOC 2780mW/2780mW VDD_CPU_CV 397mW/397mW "
    "VIN_SYS_5V0 3436mW/3436mW NC 0mW/0mW VDDQ_VDD2_1V8AO 303mW/303mW NC 0mW/0mW"
)
#: Jetson Nano, JetPack 4 (L4T 32): rails in mW without the unit, no brackets.
NANO_JP4 = (
    "RAM 1510/3956MB (lfb 109x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [3%@102,2%@102,0%@102,0%@102] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@28C CPU@30C "
    "PMIC@100C GPU@29.5C AO@37.5C thermal@29.75C POM_5V_IN 1022/1022 POM_5V_GPU 0/0 POM_5V_CPU 123/123"
)


def test_orin_nano_jetpack_6() -> None:
    stats = parse_tegrastats(ORIN_NANO_JP6)
    assert (stats.ram_used_mb, stats.ram_total_mb, stats.swap_used_mb) == (2679, 7620, 0)
    assert stats.cpu_load_pct == [1, 0, 0, 0, None, None]  # two cores off
    assert (stats.gpu_load_pct, stats.gpu_freq_mhz, stats.emc_load_pct) == (34, 305, 0)
    assert stats.temperatures_c["gpu"] == 46.812 and stats.temperatures_c["tj"] == 47.687
    assert stats.rails_mw == {"VDD_IN": 4416, "VDD_CPU_GPU_CV": 481, "VDD_SOC": 1362}
    assert stats.power_mw == 4416  # the input rail, not the sum
    assert stats.cpu_mean_load_pct == 0.2  # the four online cores


def test_agx_orin_jetpack_5_skips_sensors_that_are_off() -> None:
    stats = parse_tegrastats(AGX_ORIN_JP5)
    assert stats.ram_used_mb == 3201 and len(stats.cpu_load_pct) == 8
    assert (stats.gpu_load_pct, stats.gpu_freq_mhz) == (61, 611)
    assert "cv0" not in stats.temperatures_c and stats.temperatures_c["gpu"] == 40.75
    assert stats.power_mw == 3436  # VIN_SYS_5V0 on the AGX


def test_nano_jetpack_4_rails_without_units() -> None:
    stats = parse_tegrastats(NANO_JP4)
    assert stats.cpu_load_pct == [3, 2, 0, 0] and stats.gpu_freq_mhz == 76
    assert stats.rails_mw == {"POM_5V_IN": 1022, "POM_5V_GPU": 0, "POM_5V_CPU": 123}
    assert stats.power_mw == 1022
    assert stats.temperatures_c["cpu"] == 30.0 and stats.temperatures_c["pmic"] == 100.0


def test_a_line_with_nothing_known_is_an_error_that_quotes_it() -> None:
    with pytest.raises(ValueError, match="not a tegrastats line: 'tegrastats: permission denied"):
        parse_tegrastats("tegrastats: permission denied\n")


def test_the_reader_keeps_the_newest_sample_and_survives_a_line_it_cannot_read(tmp_path: Path) -> None:
    fake = tmp_path / "tegrastats"
    # exec: stopping the reader ends the sleep, as it ends tegrastats itself.
    fake.write_text(f"#!/bin/sh\necho '{NANO_JP4}'\necho 'garbage'\necho '{ORIN_NANO_JP6}'\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert TegrastatsReader.start_if_available(binary=str(tmp_path / "absent")) is None
    reader = TegrastatsReader.start_if_available(binary=str(fake))
    assert reader is not None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            latest = reader.latest()
            if latest is not None and latest.gpu_load_pct == 34:
                break
            time.sleep(0.05)
        latest = reader.latest()
        assert latest is not None and latest.power_mw == 4416
        assert reader.bad_lines == 1
    finally:
        reader.stop()


def test_a_box_with_tegrastats_reports_gpu_load_memory_and_power_in_its_telemetry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "tegrastats"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho '{ORIN_NANO_JP6}'\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    broker = MosquittoBroker(tmp_path / "broker")
    with broker:
        sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id="van-01")
        try:
            deadline = time.monotonic() + 10
            while sink.link.telemetry_message().power_mw is None and time.monotonic() < deadline:
                time.sleep(0.05)
            report = sink.link.telemetry_message()
        finally:
            sink.close(drain_timeout_s=0)
    assert (report.gpu_load_pct, report.cpu_load_pct, report.power_mw) == (34, 0.2, 4416)
    assert (report.ram_used_mb, report.ram_total_mb) == (2679, 7620)
