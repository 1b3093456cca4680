"""Profiles: validation errors name the file and the key; --set overrides; the CLI exits 2 on bad conf."""

from __future__ import annotations

import re

import pytest
import yaml

from jobs.config import ConfError, load_conf

ROOT_CONF = "conf/local.yaml"


def _write(tmp_path, data) -> str:
    p = tmp_path / "p.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return str(p)


def _base() -> dict:
    return {"storage": {"warehouse": "/tmp/wh"}, "ingest": {"inputs": [{"name": "s", "path": "x/*.jsonl"}]}}


def test_bundled_profiles_validate():
    local = load_conf("conf/local.yaml")
    assert (local.storage.engine, local.storage.warehouse, local.spark.master) == (
        "embedded",
        "./lakehouse",
        "local[*]",
    )
    assert local.ingest.inputs[0].path == "data/sample/raw/*"
    # The demo filters by perplexity under one of its small LMs, a model of the pool.
    pf = local.filter.perplexity
    assert (pf.enabled, pf.model, pf.keep_share) == (True, "lm-a", 0.7)
    assert pf.model in [m.model_id for m in local.score.perplexity.pool]
    assert local.clean.decontamination.action == "excise"
    cluster = load_conf("conf/cluster.example.yaml")
    assert cluster.filter.perplexity.model in [m.model_id for m in cluster.score.perplexity.pool]
    assert cluster.storage.engine == "delta-spark"
    assert cluster.storage.warehouse.startswith("s3a://")
    assert cluster.gpu.enabled is True


def test_unknown_key_names_file_and_key(tmp_path):
    data = _base()
    data["ingest"]["max_doc_byte"] = 5
    path = _write(tmp_path, data)
    with pytest.raises(ConfError) as exc:
        load_conf(path)
    assert str(exc.value) == f"{path}: ingest.max_doc_byte: unknown key"


def test_wrong_type_names_file_and_key(tmp_path):
    data = _base()
    data["ingest"]["inputs"][0]["format"] = "csv"
    data["spark"] = {"shuffle_partitions": "many"}
    path = _write(tmp_path, data)
    with pytest.raises(ConfError) as exc:
        load_conf(path)
    lines = str(exc.value).splitlines()
    assert lines[0].startswith(f"{path}: spark.shuffle_partitions: Input should be a valid integer")
    assert lines[1].startswith(
        f"{path}: ingest.inputs[0].format: Input should be 'auto', 'jsonl', 'parquet' or 'warc'"
    )
    assert len(lines) == 2


def test_missing_required_key(tmp_path):
    data = _base()
    del data["storage"]["warehouse"]
    path = _write(tmp_path, data)
    with pytest.raises(ConfError, match=rf"^{path}: storage.warehouse: Field required$"):
        load_conf(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfError, match="nope.yaml: profile not found"):
        load_conf(tmp_path / "nope.yaml")
    with pytest.raises(ConfError, match="not valid YAML"):
        load_conf(_write(tmp_path, "storage: [unclosed"))
    with pytest.raises(ConfError, match="top level must be a mapping"):
        load_conf(_write(tmp_path, "- a\n- b\n"))


def test_set_overrides(tmp_path):
    path = _write(tmp_path, _base())
    conf = load_conf(
        path,
        [
            "ingest.max_doc_bytes=1234",
            "spark.master=local[2]",
            "ingest.inputs.0.path=y/*",
            "spark.conf.spark.sql.ansi.enabled=true",
        ],
    )
    assert conf.ingest.max_doc_bytes == 1234
    assert conf.spark.master == "local[2]"
    assert conf.ingest.inputs[0].path == "y/*"
    # Keys of free-form maps keep their dots: spark.conf takes spark.* settings as strings.
    assert conf.spark.conf == {"spark.sql.ansi.enabled": "true"}


def test_set_errors(tmp_path):
    path = _write(tmp_path, _base())
    with pytest.raises(ConfError, match="expected key=value"):
        load_conf(path, ["ingest.max_doc_bytes"])
    with pytest.raises(ConfError, match=f"{path}: ingest.nope: unknown key"):
        load_conf(path, ["ingest.nope=1"])
    with pytest.raises(ConfError, match="ingest.inputs.4 is not an index"):
        load_conf(path, ["ingest.inputs.4.path=z"])
    with pytest.raises(ConfError, match="ingest.max_doc_bytes: Input should be a valid integer"):
        load_conf(path, ["ingest.max_doc_bytes=lots"])


def test_set_takes_comma_lists_for_list_settings(tmp_path):
    path = _write(tmp_path, {**_base(), "refs": {"benchmarks": [{"path": "b/*.jsonl"}]}})
    conf = load_conf(
        path,
        [
            "clean.allowed_langs=en,ja, zh",
            "refs.benchmarks.0.text_fields=question,choices.text",
            "score.similarity.splits=validation",
        ],
    )
    assert conf.clean.allowed_langs == ["en", "ja", "zh"]
    assert conf.refs.benchmarks[0].text_fields == ["question", "choices.text"]
    assert conf.score.similarity.splits == ["validation"]
    # YAML flow lists still work, and a comma in a plain string setting stays a comma.
    conf = load_conf(path, ["clean.allowed_langs=[en, de]", "ingest.inputs.0.path=a,b"])
    assert (conf.clean.allowed_langs, conf.ingest.inputs[0].path) == (["en", "de"], "a,b")
    # A list setting given something else says how to write a list.
    with pytest.raises(ConfError) as exc:
        load_conf(path, ["clean.allowed_langs={a: 1}"])
    assert str(exc.value) == (
        f"{path}: clean.allowed_langs: Input should be a valid list "
        "(in YAML: [a, b]; on the command line: --set key=a,b)"
    )


@pytest.mark.parametrize(
    "clean, message",
    [
        ({"allowed_langs": ["en", "jp"]}, "'jp' is not a label the language identifier gives"),
        ({"allowed_langs": ["yue"]}, "'yue' is labelled 'zh' (ISO 639-1): allow that"),
        ({"allowed_langs": ["unknown"]}, "'unknown' is not a language: set clean.unknown_lang: keep instead"),
        ({"unknown_lang": "maybe"}, "clean.unknown_lang: Input should be 'drop' or 'keep'"),
    ],
)
def test_language_settings_are_checked(tmp_path, clean, message):
    with pytest.raises(ConfError, match=re.escape(message)):
        load_conf(_write(tmp_path, {**_base(), "clean": clean}))


def test_job_exits_2_on_bad_conf(tmp_path, capsys):
    from jobs import cli, ingest

    assert ingest.main(["--conf", str(tmp_path / "missing.yaml")]) == 2
    assert "profile not found" in capsys.readouterr().err
    assert cli.main(["stage", "ingest", "--conf", ROOT_CONF, "--set", "ingest.bogus=1"]) == 2
    assert "ingest.bogus: unknown key" in capsys.readouterr().err


def test_clean_section_errors_name_the_key(tmp_path):
    data = _base()
    data["clean"] = {"rules": [{"name": "gopher_qualty"}]}
    path = _write(tmp_path, data)
    msg = rf"^{path}: clean.rules: Value error, unknown quality rule 'gopher_qualty'; known rules: gopher_q"
    with pytest.raises(ConfError, match=msg):
        load_conf(path)
    data["clean"] = {"rules": [{"name": "c4", "params": {"max_javascript_line": 3}}]}
    with pytest.raises(ConfError, match=r"clean.rules: Value error, .*max_javascript_line"):
        load_conf(_write(tmp_path, data))
    data["clean"] = {"near_dedup": {"num_perm": 64, "bands": 20, "rows": 6}}
    with pytest.raises(
        ConfError, match=r"clean.near_dedup.rows: Value error, bands x rows = 120 is more than"
    ):
        load_conf(_write(tmp_path, data))
    data["clean"] = {
        "rules": [{"name": "c4", "params": {"max_javascript_lines": 5}}],
        "allowed_langs": ["en", "de"],
    }
    conf = load_conf(_write(tmp_path, data))
    assert conf.clean.rule_params() == [("c4", {**conf.clean.rule_params()[0][1], "max_javascript_lines": 5})]
    assert conf.clean.rule_params()[0][1]["max_javascript_lines"] == 5


def test_decontamination_and_perplexity_filter_settings_are_checked(tmp_path):
    data = _base()
    data["clean"] = {"decontamination": {"ngram": 10, "min_ngram": 12}}
    data["filter"] = {"perplexity": {"keep_share": 1.5, "keep_bands": ["head", "head"]}}
    path = _write(tmp_path, data)
    with pytest.raises(ConfError) as exc:
        load_conf(path)
    lines = str(exc.value).splitlines()
    assert (
        lines[0]
        == f"{path}: clean.decontamination.min_ngram: Value error, min_ngram 12 is more than ngram 10"
    )
    assert lines[1].startswith(f"{path}: filter.perplexity.keep_share: Input should be less than 1")
    assert lines[2] == f"{path}: filter.perplexity.keep_bands: Value error, bands repeat: ['head', 'head']"
