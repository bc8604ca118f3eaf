"""Hadoop's own FsShell (``hadoop fs``), run from pyspark's jars: a WebHDFS client nobody here wrote."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyspark

from cache_service.cluster.client_settings import site_xml


def fs_shell(
    conf_dir: Path, args: Sequence[str], hdfs_site: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run ``FsShell args`` with ``conf_dir`` (written here: an empty core-site.xml, ``hdfs_site``) first on the class
    path; returns the finished process (stdout and stderr as bytes), whatever its exit code."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "core-site.xml").write_text(site_xml({}))
    (conf_dir / "hdfs-site.xml").write_text(site_xml(hdfs_site or {}))
    jars = Path(pyspark.__file__).parent / "jars"
    argv = ["java", "-cp", f"{conf_dir}:{jars}/*", "org.apache.hadoop.fs.FsShell", *args]
    return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)


_BATCH_SOURCE = """
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FsShell;
import org.apache.hadoop.util.ToolRunner;
import java.util.ArrayList;
import java.util.List;

public class FsShellBatch {
    public static void main(String[] argv) throws Exception {
        Configuration conf = new Configuration();
        List<String> command = new ArrayList<>();
        for (int i = 0; i <= argv.length; i++) {
            if (i < argv.length && !argv[i].equals("%(separator)s")) {
                command.add(argv[i]);
                continue;
            }
            System.out.println("%(begin)s " + String.join(" ", command));
            System.out.flush();
            int code = ToolRunner.run(new FsShell(conf), command.toArray(new String[0]));
            System.out.flush();
            System.err.flush();
            System.out.println("%(end)s " + code);
            System.out.flush();
            command.clear();
        }
    }
}
"""
_SEPARATOR, _BEGIN, _END = "--lakecache-next--", "<<<lakecache-command", "<<<lakecache-exit"


def fs_shell_batch(conf_dir: Path, commands: Sequence[Sequence[str]], timeout: float = 300) -> list[tuple[int, str]]:
    """Run each of ``commands`` (FsShell arguments, e.g. ``["-ls", url]``) in turn in one JVM (a JVM start costs
    seconds); returns each command's exit code and standard output. Standard error is not split per command."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "core-site.xml").write_text(site_xml({}))
    (conf_dir / "hdfs-site.xml").write_text(site_xml({}))
    source = conf_dir / "FsShellBatch.java"
    source.write_text(_BATCH_SOURCE % {"separator": _SEPARATOR, "begin": _BEGIN, "end": _END})
    jars = Path(pyspark.__file__).parent / "jars"
    argv = ["java", "-cp", f"{conf_dir}:{jars}/*", str(source)]
    for i, command in enumerate(commands):
        argv += ([_SEPARATOR] if i else []) + list(command)
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    results: list[tuple[int, str]] = []
    output: list[str] = []
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith(_BEGIN):
            output = []
        elif _END in line:  # after output without a final newline, the mark ends its last line
            before, _, code = line.partition(_END)
            output += [before] if before else []
            results.append((int(code), "\n".join(output)))
        else:
            output.append(line)
    if len(results) != len(commands):
        raise AssertionError(f"FsShell batch stopped after {len(results)} commands: {done.stderr.decode()[-3000:]}")
    return results
