"""The colcon (ament_python) package in ``ros2/crmsort`` as data, since ROS 2 is not installed
here: the manifest, setup.cfg and setup.py parse, agree with each other and with the
project, every ``ros2 run`` entry point names an existing callable, one exists for every
node the launch file starts, and every message package the nodes use is declared."""

from __future__ import annotations

import configparser
import importlib
import os
import runpy
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import setuptools

from sorting.config.line import DEFAULT_LINE
from sorting.deploy.config import load_deployment
from sorting.deploy.launch_gen import launch_nodes
from sorting.deploy.plan import build_line
from sorting.runtime import InProcessExecutor, SimClock

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "ros2" / "crmsort"
MSGS = REPO / "sorting" / "msgs" / "crmsort_msgs"


@pytest.fixture(scope="module")
def setup_kwargs() -> dict[str, Any]:
    """What ros2/crmsort/setup.py hands to setuptools (run as colcon runs it, in its folder)."""
    got: dict[str, Any] = {}
    saved = setuptools.setup
    cwd = Path.cwd()
    setuptools.setup = lambda **kw: got.update(kw)
    try:
        os.chdir(PKG)
        runpy.run_path(str(PKG / "setup.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
        setuptools.setup = saved
    return got


def _manifest(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "package" and root.get("format") == "3"
    return root


def test_manifest_matches_project_and_build_type(setup_kwargs: dict[str, Any]) -> None:
    root = _manifest(PKG / "package.xml")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert root.findtext("name") == setup_kwargs["name"] == project["name"] == "crmsort"
    assert root.findtext("version") == setup_kwargs["version"] == project["version"]
    assert root.findtext("license") == project["license"]["text"]
    assert root.findtext("export/build_type") == "ament_python"
    # the interface package it depends on is the repository's own, same version
    msgs = _manifest(MSGS / "package.xml")
    assert msgs.findtext("name") == "crmsort_msgs"
    assert msgs.findtext("version") == root.findtext("version")
    assert (PKG / "resource" / "crmsort").is_file()  # the ament index marker


def test_setup_cfg_puts_executables_where_ros2_run_looks() -> None:
    cfg = configparser.ConfigParser()
    assert cfg.read(PKG / "setup.cfg")
    assert cfg["develop"]["script_dir"] == "$base/lib/crmsort"
    assert cfg["install"]["install_scripts"] == "$base/lib/crmsort"


def test_setup_packages_and_data_files_exist(setup_kwargs: dict[str, Any]) -> None:
    src = (PKG / setup_kwargs["package_dir"][""]).resolve()
    assert src == REPO
    pkgs = set(setup_kwargs["packages"])
    assert {"sorting", "sorting.deploy", "sorting.msgs", "perception", "robot",
            "calibration"} <= pkgs
    assert all((src / p.replace(".", "/") / "__init__.py").is_file() for p in pkgs)
    dests = dict(setup_kwargs["data_files"])
    assert dests["share/ament_index/resource_index/packages"] == ["resource/crmsort"]
    assert dests["share/crmsort"] == ["package.xml"]
    for files in dests.values():
        for f in files:
            assert (PKG / f).is_file(), f
    launch = {Path(f).name for f in dests["share/crmsort/launch"]}
    assert {"line1.launch.py", DEFAULT_LINE.name} <= launch


def test_every_launched_node_has_an_entry_point_that_resolves(
        setup_kwargs: dict[str, Any]) -> None:
    scripts = dict(
        (name.strip(), target.strip())
        for name, target in (e.split("=", 1) for e in setup_kwargs["entry_points"]
                             ["console_scripts"]))
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        assert callable(fn), f"{name} = {target}"
    launched = {n.executable for n in launch_nodes(DEFAULT_LINE)}
    assert launched <= set(scripts), launched - set(scripts)
    from sorting.deploy.rclpy_host import console_scripts

    expected = dict(e.replace(" ", "").split("=", 1) for e in console_scripts())
    assert {k: v for k, v in scripts.items() if k in expected} == expected
    assert scripts["crmsort"] == "sorting.cli.main:main"


def test_manifest_declares_every_message_package_the_nodes_use() -> None:
    ex = InProcessExecutor(SimClock())
    build_line(load_deployment(DEFAULT_LINE)[0], ex)
    used = {t.msg_type.split("/")[0] for t in ex.topics()}
    declared = {e.text for e in _manifest(PKG / "package.xml").findall("exec_depend")}
    assert used <= declared, used - declared
    assert {"rclpy", "rosidl_runtime_py", "launch", "launch_ros"} <= declared


def test_setup_py_is_run_by_the_python_colcon_uses() -> None:
    # colcon runs setup.py with the interpreter of the ROS 2 install; nothing in it may need
    # more than the standard library and setuptools (no import of the project at build time)
    text = (PKG / "setup.py").read_text()
    imports = {ln.split()[1].split(".")[0] for ln in text.splitlines()
               if ln.startswith(("import ", "from "))}
    assert imports <= {"os", "pathlib", "setuptools"} | set(sys.stdlib_module_names)
