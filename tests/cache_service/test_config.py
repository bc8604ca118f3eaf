"""Loading the TOML configuration with ``CACHE_<SECTION>_<KEY>`` overrides, and reporting every mistake at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cache_service.config import ConfigError, MountConfig, TierConfig, load_config
from infra.toml_writer import dumps, merge

MiB = 1024**2
GiB = 1024**3

MOUNTS = [
    {"path": "/warehouse", "uri": "s3://lake/warehouse"},
    {"path": "/raw", "uri": "s3://lake/raw"},
]


def good_document(disk_path: Path) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "webhdfs_port": 9870, "s3_port": 9878},
        "under_store": {"endpoint_url": "http://127.0.0.1:5000", "region": "us-east-1"},
        "mounts": MOUNTS,
        "store": {
            "page_size": "1MiB",
            "eviction": "s3fifo",
            "high_watermark": 0.90,
            "low_watermark": 0.75,
            "tiers": [
                {"medium": "memory", "capacity": "1GiB"},
                {"medium": "disk", "path": str(disk_path), "capacity": "20GiB"},
            ],
        },
        "metadata": {"sync_interval": "30s"},
        "write": {"staging_patterns": ["_temporary", ".spark-staging-*"]},
        "cluster": {"advertise_host": "cache.internal"},
    }


@pytest.fixture
def write_config(tmp_path):
    """Writes the good document with ``overrides`` merged in (tables key by key, lists replaced); returns its path."""

    def write(overrides: dict[str, Any] | None = None) -> Path:
        path = tmp_path / "lakecache.toml"
        path.write_text(dumps(merge(good_document(tmp_path / "disk"), overrides or {})))
        return path

    return write


def problems_of(path: Path | None, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, env=env or {})
    return excinfo.value.problems


# --- a good file -------------------------------------------------------------------------------------------


def test_good_file_loads_into_typed_values(write_config, tmp_path):
    config = load_config(write_config(), env={})

    assert config.server.webhdfs_port == 9870
    assert config.under_store.endpoint_url == "http://127.0.0.1:5000"
    assert config.mounts == (
        MountConfig(path="/warehouse", uri="s3://lake/warehouse"),
        MountConfig(path="/raw", uri="s3://lake/raw"),
    )
    assert config.store.page_size == MiB
    assert config.store.tiers == (
        TierConfig(medium="memory", capacity=GiB),
        TierConfig(medium="disk", capacity=20 * GiB, path=str(tmp_path / "disk")),
    )
    assert config.store.disk_tier == config.store.tiers[1]
    assert config.metadata.sync_interval == 30.0
    assert config.write.staging_patterns == ("_temporary", ".spark-staging-*")
    assert config.cluster.advertise_host == "cache.internal"


def test_sections_left_out_take_their_defaults(tmp_path):
    path = tmp_path / "minimal.toml"
    path.write_text(dumps({"mounts": MOUNTS}))

    config = load_config(path, env={})

    assert config.server.webhdfs_port == 9870
    assert config.store.eviction == "s3fifo"
    assert config.store.disk_tier is not None


def test_staging_patterns_match_whole_path_components(write_config):
    write = load_config(write_config(), env={}).write

    assert write.is_staging("/warehouse/t/_temporary/0/part-0")
    assert write.is_staging("/warehouse/t/.spark-staging-1234/part-0")
    assert not write.is_staging("/warehouse/t/not_temporary/part-0")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.toml", env={})


def test_file_that_is_not_toml_is_one_problem_naming_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[server\nhost = 1\n")

    problems = problems_of(path)

    assert len(problems) == 1
    assert str(path) in problems[0]
    assert "not valid TOML" in problems[0]


# --- every mistake is its own line -------------------------------------------------------------------------

# (name, overrides that make exactly this one mistake, a fragment of the problem line it must produce)
MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown key", {"server": {"colour": "blue"}}, "[server]: unknown key 'colour'"),
    ("unknown section", {"cache": {"size": "1GiB"}}, "unknown section [cache]"),
    ("bad size string", {"store": {"page_size": "4 furlongs"}}, "store.page_size: not a size: '4 furlongs'"),
    (
        "same mount path twice",
        {"mounts": [*MOUNTS, {"path": "/warehouse/", "uri": "s3://other/warehouse"}]},
        "'/warehouse' is mounted twice",
    ),
    (
        "overlapping S3 URIs",
        {"mounts": [*MOUNTS, {"path": "/archive", "uri": "s3://lake/warehouse/2024"}]},
        "share S3 objects",
    ),
    ("watermarks out of order", {"store": {"low_watermark": 0.95}}, "watermarks out of order"),
    (
        "missing disk tier",
        {"store": {"tiers": [{"medium": "memory", "capacity": "1GiB"}]}},
        "a disk tier is required",
    ),
    ("bad eviction name", {"store": {"eviction": "fifo"}}, "store.eviction: expected one of ['lru', 's3fifo']"),
]


@pytest.mark.parametrize(("overrides", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_alone_is_exactly_one_problem_line(write_config, overrides, expected):
    problems = problems_of(write_config(overrides))

    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_all_mistakes_in_one_file_are_reported_together_one_line_each(write_config):
    overrides: dict[str, Any] = {}
    for _, mistake, _ in MISTAKES:
        overrides = merge(overrides, mistake)
    overrides["mounts"] = [
        *MOUNTS,
        {"path": "/warehouse/", "uri": "s3://other/warehouse"},
        {"path": "/archive", "uri": "s3://lake/warehouse/2024"},
    ]

    problems = problems_of(write_config(overrides))

    assert len(problems) == len(MISTAKES), problems
    for name, _, expected in MISTAKES:
        assert sum(expected in line for line in problems) == 1, f"{name}: {problems}"
    assert all("\n" not in line for line in problems)
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(overrides), env={})
    assert str(excinfo.value).count("\n  - ") == len(MISTAKES)


@pytest.mark.parametrize(
    "disk_tier",
    [
        {"medium": "disk", "path": "/var/lib/lakecache", "capacity": "20 GiBs"},
        {"medium": "disk", "capacity": "20GiB"},
    ],
    ids=["bad capacity", "no path"],
)
def test_a_mistake_inside_the_disk_tier_is_one_line_not_also_a_missing_disk_tier(write_config, disk_tier):
    problems = problems_of(write_config({"store": {"tiers": [{"medium": "memory", "capacity": "1GiB"}, disk_tier]}}))

    assert len(problems) == 1, problems
    assert problems[0].startswith("store.tiers[1].")


def test_a_file_without_mounts_is_refused(tmp_path):
    path = tmp_path / "no-mounts.toml"
    path.write_text(dumps({"server": {"webhdfs_port": 9870}}))

    assert problems_of(path) == ["mounts: at least one [[mounts]] entry is needed"]


# --- environment overrides ---------------------------------------------------------------------------------


def test_env_overrides_win_over_the_file_and_keep_its_other_keys(write_config):
    config = load_config(
        write_config({"server": {"host": "0.0.0.0"}}),
        env={"CACHE_SERVER_WEBHDFS_PORT": "19870", "CACHE_STORE_PAGE_SIZE": "4MiB"},
    )

    assert config.server.webhdfs_port == 19870
    assert config.server.host == "0.0.0.0"
    assert config.store.page_size == 4 * MiB
    assert config.store.eviction == "s3fifo"


def test_admin_token_from_env_stays_a_string_even_when_it_looks_like_a_number(write_config):
    assert load_config(write_config(), env={"CACHE_ADMIN_TOKEN": "s3cr3t"}).admin.token == "s3cr3t"
    assert load_config(write_config(), env={"CACHE_ADMIN_TOKEN": "12345"}).admin.token == "12345"


@pytest.mark.parametrize(
    ("name", "section", "key"),
    [
        ("CACHE_UNDER_STORE_ACCESS_KEY_ID", "under_store", "access_key_id"),
        ("CACHE_S3_API_ACCESS_KEY", "s3_api", "access_key"),
    ],
)
def test_string_settings_from_env_stay_strings_even_when_they_look_like_numbers(write_config, name, section, key):
    # S3-compatible stores (MinIO, Ceph) accept access keys made of digits only.
    config = load_config(write_config(), env={name: "20240101"})

    assert getattr(getattr(config, section), key) == "20240101"


def test_env_mounts_as_a_toml_inline_array_replace_the_files_mounts(write_config):
    env = {"CACHE_MOUNTS": '[{path = "/lake", uri = "s3://other/lake"}, {path = "/tmp", uri = "s3://scratch"}]'}

    config = load_config(write_config(), env=env)

    assert config.mounts == (
        MountConfig(path="/lake", uri="s3://other/lake"),
        MountConfig(path="/tmp", uri="s3://scratch"),
    )


def test_env_mounts_alone_make_a_complete_configuration():
    config = load_config(None, env={"CACHE_MOUNTS": '[{path = "/w", uri = "s3://lake/w"}]'})

    assert config.mounts == (MountConfig(path="/w", uri="s3://lake/w"),)


def test_unknown_key_in_a_known_env_section_is_an_error(write_config):
    problems = problems_of(write_config(), env={"CACHE_SERVER_FOO": "1"})

    assert problems == ["CACHE_SERVER_FOO: unknown key 'foo' in section [server]"]


def test_a_cluster_reads_its_keys_from_the_file_and_the_environment(write_config):
    cluster = {"redis_url": "redis://127.0.0.1:6379/0", "heartbeat_interval": "1s", "block_size": "16MiB"}
    config = load_config(
        write_config({"cluster": cluster, "admin": {"token": "s3cret"}}), env={"CACHE_CLUSTER_MEMBER_TIMEOUT": "5s"}
    )

    assert config.cluster.enabled
    assert (config.cluster.heartbeat_interval, config.cluster.member_timeout) == (1.0, 5.0)
    assert config.cluster.block_size == 16 * 1024**2
    assert config.cluster.peer_timeout == 5.0


@pytest.mark.parametrize(
    ("cluster", "problem"),
    [
        ({"redis_url": "http://127.0.0.1:6379"}, "cluster.redis_url: expected redis://host:port/db"),
        ({"heartbeat_interval": "4s", "member_timeout": "6s"}, "cluster: member_timeout must be at least twice"),
        ({"block_size": "1500KiB"}, "cluster.block_size: must be a multiple of store.page_size"),
        ({"peer_timeout": "0s"}, "cluster.peer_timeout: must be positive"),
    ],
)
def test_a_cluster_key_out_of_its_rules_is_named(write_config, cluster, problem):
    problems = problems_of(write_config({"cluster": cluster, "admin": {"token": "s3cret"}}))

    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_cluster_without_an_admin_token_is_refused(write_config):
    problems = problems_of(write_config({"cluster": {"redis_url": "redis://127.0.0.1:6379/0"}}))

    assert problems == [
        "cluster: a cluster needs [admin] token (CACHE_ADMIN_TOKEN): workers sign their requests to each other"
    ]


def test_env_variables_of_cachectl_are_not_the_services_business(write_config):
    env = {"CACHE_ENDPOINT": "http://127.0.0.1:1", "CACHE_TOKEN": "x", "PATH": "/usr/bin"}

    config = load_config(write_config(), env=env)

    assert config.server.webhdfs_port == 9870


def test_bad_env_value_is_reported_with_the_key_it_sets(write_config):
    problems = problems_of(write_config(), env={"CACHE_STORE_PAGE_SIZE": "huge", "CACHE_SERVER_S3_PORT": "many"})

    assert sorted(problems) == sorted(
        [
            "store.page_size: not a size: 'huge' (use a number with B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)",
            "server.s3_port: expected an integer, got 'many'",
        ]
    )


# --- users and rights --------------------------------------------------------------------------------------


def _user(access_key: str = "etl", **entry: Any) -> dict[str, Any]:
    grant = {"bucket": "lake", "prefix": "warehouse/", "access": "write"}
    return {"access_key": access_key, "secret_key": "hush-hush-1", "grants": [grant], **entry}


def test_users_and_mount_rights_load_into_typed_values(write_config):
    mounts = [{**MOUNTS[0], "read_only": False, "users": {"etl": "write", "analyst": "read"}}, MOUNTS[1]]
    users = [
        {"access_key": "etl", "secret_key_env": "LAKECACHE_ETL_SECRET", "grants": _user()["grants"]},
        _user("analyst", grants=[{"bucket": "*", "prefix": "", "access": "read"}]),
    ]

    config = load_config(write_config({"mounts": mounts, "s3_api": {"users": users}}), env={})

    etl, analyst = config.s3_api.users
    assert (etl.access_key, etl.secret_key_env, etl.grants[0].prefix, etl.grants[0].access) == (
        "etl",
        "LAKECACHE_ETL_SECRET",
        "warehouse/",
        "write",
    )
    assert analyst.grants[0].bucket == "*"
    assert config.mounts[0].users == (("etl", "write"), ("analyst", "read"))
    assert config.mounts[1].users is None and not config.mounts[1].read_only
    assert "hush-hush-1" not in repr(config)


# (name, users, a fragment of the one problem line)
USER_MISTAKES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("no secret", [_user(secret_key="")], "s3_api.users[0] (etl): needs a secret"),
    ("same access key twice", [_user(), _user(grants=[])], "s3_api.users[1] (etl): access key 'etl' is listed twice"),
    ("no access key", [_user("")], "s3_api.users[0]: access_key is missing or empty"),
    (
        "empty bucket",
        [_user(grants=[{"bucket": "", "access": "read"}])],
        "s3_api.users[0] (etl).grants[0]: bucket '' is not a bucket name",
    ),
    (
        "malformed bucket",
        [_user(grants=[{"bucket": "lake/warehouse", "access": "read"}])],
        "bucket 'lake/warehouse' is not a bucket name",
    ),
    (
        "unknown access",
        [_user(grants=[{"bucket": "lake", "access": "admin"}])],
        's3_api.users[0] (etl).grants[0]: access must be "read" or "write", got \'admin\'',
    ),
    (
        "overlapping grants",
        [_user(grants=[{"bucket": "lake", "prefix": "w", "access": "read"}, _user()["grants"][0]])],
        "grants[0] (lake/w) and grants[1] (lake/warehouse/) overlap",
    ),
    (
        "a grant that is not a table",
        [_user(grants=["lake/warehouse"])],
        "s3_api.users[0] (etl).grants[0]: expected a table of bucket, prefix and access",
    ),
    ("an unknown key", [_user(password="x")], "s3_api.users[0]: unknown key(s) ['password']"),
]


@pytest.mark.parametrize(("users", "expected"), [m[1:] for m in USER_MISTAKES], ids=[m[0] for m in USER_MISTAKES])
def test_each_user_mistake_is_exactly_one_line_that_never_quotes_a_secret(write_config, users, expected):
    problems = problems_of(write_config({"s3_api": {"users": users}}))

    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "hush-hush-1" not in problems[0]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"users": {"analyst": "admin"}}, 'mounts[0].users.analyst: expected "read" or "write", got \'admin\''),
        ({"users": ["etl"]}, 'mounts[0].users: expected a table of user = "read" or "write"'),
        ({"read_only": "yes"}, "mounts[0].read_only: expected true or false, got 'yes'"),
    ],
)
def test_a_mount_rights_mistake_is_exactly_one_line(write_config, entry, expected):
    problems = problems_of(write_config({"mounts": [{**MOUNTS[0], **entry}, MOUNTS[1]]}))

    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_users_can_come_from_the_environment_as_a_toml_array(write_config):
    env = {
        "CACHE_S3_API_USERS": '[{access_key = "etl", secret_key_env = "E", grants = [{bucket = "*", access = "read"}]}]'
    }

    config = load_config(write_config(), env=env)

    assert config.s3_api.users[0].grants[0].bucket == "*"
