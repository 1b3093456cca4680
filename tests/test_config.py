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
    # A crawl segment is ingested in batches of 100 GiB; locally a run's files go at once.
    assert (cluster.ingest.commit_bytes, local.ingest.commit_bytes) == (100 << 30, None)


def test_held_out_splits(tmp_path):
    path = _write(tmp_path, _base())
    refs = load_conf(path).refs
    assert (refs.target_splits, refs.eval_split) == (["train", "dev"], "test")
    with pytest.raises(ConfError) as exc:
        load_conf(path, ["refs.target_splits=train,test"])
    assert str(exc.value) == (
        f"{path}: refs: Value error, eval_split 'test' is also in target_splits ['train', 'test']: the "
        "evaluation split is never used to select; take it out of target_splits or name another eval_split"
    )
    # The old BETR-only knob is folded into refs.target_splits, so the two can never disagree.
    with pytest.raises(ConfError, match=r"score.similarity: .*moved to refs.target_splits"):
        load_conf(path, ["score.similarity.splits=validation"])


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
            "refs.target_splits=train,val",
        ],
    )
    assert conf.clean.allowed_langs == ["en", "ja", "zh"]
    assert conf.refs.benchmarks[0].text_fields == ["question", "choices.text"]
    assert conf.refs.target_splits == ["train", "validation"]  # folded as load_refs folds a record's split
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
    data["clean"] = {"rules": [{"name": "c4_doc", "params": {"max_javascript_line": 3}}]}
    with pytest.raises(ConfError, match=r"clean.rules: Value error, .*max_javascript_line"):
        load_conf(_write(tmp_path, data))
    # The document-level C4 rule was renamed when the published line filter came: the error says so.
    data["clean"] = {"rules": [{"name": "c4"}]}
    with pytest.raises(ConfError, match=r"unknown quality rule 'c4' \('c4' is now c4_doc .* or c4_lines"):
        load_conf(_write(tmp_path, data))
    data["clean"] = {"near_dedup": {"num_perm": 64, "bands": 20, "rows": 6}}
    with pytest.raises(
        ConfError, match=r"clean.near_dedup.rows: Value error, bands x rows = 120 is more than"
    ):
        load_conf(_write(tmp_path, data))
    data["clean"] = {
        "rules": [{"name": "c4_doc", "params": {"max_javascript_lines": 5}}],
        "allowed_langs": ["en", "de"],
    }
    conf = load_conf(_write(tmp_path, data))
    assert conf.clean.rule_params() == [
        ("c4_doc", {**conf.clean.rule_params()[0][1], "max_javascript_lines": 5})
    ]
    assert conf.clean.rule_params()[0][1]["max_javascript_lines"] == 5


def test_method_defaults_follow_the_papers(tmp_path):
    """BETR's and the perplexity-correlation page step's fastText settings, BETR's sample and min rank over
    balanced targets; the kept shares follow select's budget unless stated; fastText needs a bounded
    sample."""
    data = _base()
    conf = load_conf(_write(tmp_path, data))
    clf = conf.aggregate.classifier
    assert clf.backend == "fasttext" and clf.max_docs_per_class == 100_000
    betr = clf.fasttext.betr
    assert (betr.word_ngrams, betr.dim, betr.lr, betr.ws, betr.min_count, betr.epoch) == (
        2,
        128,
        0.03,
        10,
        5,
        5,
    )
    ppl = clf.fasttext.pplcorr
    assert (ppl.word_ngrams, ppl.dim, ppl.lr, ppl.min_count, ppl.epoch, ppl.bucket) == (
        2,
        100,
        0.1,
        1,
        5,
        2_000_000,
    )
    assert (conf.aggregate.betr.combine, conf.aggregate.betr.keep_token_share) == ("min_rank", None)
    assert (conf.aggregate.betr.heldout_share, conf.aggregate.domains.keep_ratio) == (0.0, None)
    assert (conf.score.similarity.sample_docs, conf.score.similarity.balance_targets) == (1_000_000, True)
    # A partial override keeps the method's other paper settings.
    data["aggregate"] = {"classifier": {"fasttext": {"betr": {"bucket": 4096}}}}
    betr = load_conf(_write(tmp_path, data)).aggregate.classifier.fasttext.betr
    assert (betr.bucket, betr.dim, betr.lr, betr.min_count) == (4096, 128, 0.03, 5)
    data["aggregate"] = {"classifier": {"max_docs_per_class": None}}
    with pytest.raises(
        ConfError, match=r"aggregate.classifier: Value error, max_docs_per_class: fastText trains"
    ):
        load_conf(_write(tmp_path, data))
    data["aggregate"] = {"classifier": {"max_docs_per_class": None, "backend": "spark_lr"}}
    assert load_conf(_write(tmp_path, data)).aggregate.classifier.max_docs_per_class is None


def test_meta_rater_defaults_are_the_papers_and_the_profiles_say_where_they_differ(tmp_path):
    """Meta-rater's settings default to the paper's; the cluster example runs them, the demo scales down."""
    w = load_conf(_write(tmp_path, _base())).aggregate.weights
    assert w.signals == [f"{d}_label" for d in ("professionalism", "readability", "reasoning", "cleanliness")]
    assert (w.proposals, w.top_share, w.candidates, w.best, w.classes) == (256, 0.15, 1_000_000, 128, {})
    lgbm = w.lightgbm
    assert (
        lgbm.boosting,
        lgbm.learning_rate,
        lgbm.num_boost_round,
        lgbm.early_stopping_rounds,
        lgbm.seed,
    ) == (
        "gbdt",
        0.01,
        1000,
        5,
        42,
    )
    assert (lgbm.valid_share, lgbm.num_leaves, lgbm.min_child_samples, lgbm.min_data_in_bin) == (
        0.2,
        31,
        20,
        3,
    )
    cluster = load_conf("conf/cluster.example.yaml").aggregate.weights
    assert (cluster.proposals, cluster.candidates, cluster.lightgbm) == (256, 1_000_000, lgbm)
    demo = load_conf(ROOT_CONF).aggregate.weights
    assert (demo.proposals, demo.candidates) == (32, 100_000)
    assert demo.signals[:4] == w.signals

    bad = {
        "classes": (
            {"scores.edu.x": 6},
            "aggregate.weights.classes: Value error, ['scores.edu.x'] not in signals",
        ),
        "lightgbm": (
            {"boosting": "goss"},
            "aggregate.weights.lightgbm.boosting: Input should be 'gbdt' or 'dart'",
        ),
    }
    for key, (value, message) in bad.items():
        with pytest.raises(ConfError, match=re.escape(message)):
            load_conf(_write(tmp_path, {**_base(), "aggregate": {"weights": {key: value}}}))
    with pytest.raises(ConfError, match=re.escape("a class output has k ≥ 2 classes: ['scores.edu.x']")):
        weights = {"signals": ["scores.edu.x"], "classes": {"scores.edu.x": 1}}
        load_conf(_write(tmp_path, {**_base(), "aggregate": {"weights": weights}}))


def test_proxy_training_and_evaluate_settings(tmp_path):
    cluster = load_conf("conf/cluster.example.yaml")
    assert (cluster.aggregate.weights.proxy, cluster.aggregate.weights.proposals) == ("train", 256)
    local = load_conf("conf/local.yaml")
    assert (
        local.aggregate.weights.proxy == "ngram" and local.aggregate.weights.proxy_model.train_tokens == 65536
    )
    assert local.evaluate.seeds == [0, 1, 2] and local.evaluate.model.train_tokens is None
    assert (local.refs.target_splits, local.refs.eval_split) == (["train", "dev"], "test")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**_base(), "aggregate": {"weights": {"proxy": "builtin"}}}))
    assert load_conf(path).aggregate.weights.proxy == "ngram"  # the n-gram proxy's old name
    assert load_conf(path).evaluate is None  # no section: the evaluate stage has nothing to do
    bad = {
        "refs.eval_split=dev": "refs: Value error, eval_split 'dev' is also in target_splits",
        "evaluate.seeds=[0,1]": "evaluate.seeds: List should have at least 3 items",
        "evaluate.model.n_head=3": "evaluate.model: Value error, n_embd 128 is not a multiple of n_head 3",
        "aggregate.weights.proxy_model.train_tokens=100": "train_tokens 100 is less than one step",
    }
    for item, message in bad.items():
        with pytest.raises(ConfError, match=re.escape(message)):
            load_conf(path, [item])


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
