"""port.options: the original's option syntax, requirements, set-once merging and --help."""
from __future__ import annotations

import io

import pytest

from port.convnet import ConvNet
from port.options import (BooleanOptionParser, FloatOptionParser, IntegerOptionParser, ListOptionParser,
                          OptionException, OptionExpression, OptionMissingException, OptionsParser,
                          RangeOptionParser, StringOptionParser)

REQUIRED = ["--data-path=/d", "--save-path=/s", "--train-range=1-5", "--test-range=6",
            "--layer-def=l.cfg", "--layer-params=p.cfg", "--data-provider=cifar"]


def _parse(argv):
    op = ConvNet.get_options_parser()
    op.parse(argv)
    op.eval_expr_defaults()
    return op


def test_values_types_and_defaults():
    op = _parse(REQUIRED + ["--mini=64", "--test-only=1", "--color-noise=0.1", "--gpu=0,1", "-f", ""])
    assert op.get_value("train_batch_range") == [1, 2, 3, 4, 5]
    assert op.get_value("test_batch_range") == [6]
    assert op.get_value("minibatch_size") == 64
    assert op.get_value("test_only") == 1
    assert op.get_value("color_noise") == pytest.approx(0.1)
    assert op.get_value("gpu") == [0, 1]
    # the 2012 driver's changed defaults
    assert op.get_value("testing_freq") == 50
    assert op.get_value("num_epochs") == 50000
    assert op.get_value("max_filesize_mb") == 0
    assert op.options["dp_type"].default is None  # so --data-provider is required, as in 2012
    assert "max_test_err" not in op.options


def test_gpu_default_is_an_expression_of_num_gpus():
    assert _parse(REQUIRED + ["--num-gpus=3"]).get_value("gpu") == [-1, -1, -1]


@pytest.mark.parametrize("arg, msg", [
    ("--mini=abc", "not an integer"),
    ("--test-only=2", "not a boolean"),
    ("--train-range=5-3", "empty"),
    ("--train-range=a-b", "neither an integer nor a range"),
    ("--train-range=1-1000000000", "holds 1000000000 batches; at most 100000 are allowed"),
    ("--test-range=0-" + "9" * 40, "holds 1" + "0" * 40 + " batches"),
    ("--train-range=-3", "batch numbers are >= 0, got -3"),
    ("--color-noise=x", "not a float"),
    ("--nonsense=1", "not recognized"),
])
def test_bad_values_are_one_line_errors(arg, msg):
    argv = [a for a in REQUIRED if not a.startswith(arg.split("=")[0] + "=")] + [arg]
    with pytest.raises(OptionException, match=msg) as e:
        _parse(argv)
    assert "\n" not in str(e.value)


def test_a_huge_range_is_refused_before_any_list_is_built():
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(OptionException, match="at most 100000"):
            RangeOptionParser.parse("1-" + "9" * 18)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    assert RangeOptionParser.parse(" 2 - 4 ") == [2, 3, 4]
    assert len(RangeOptionParser.parse("1-100000")) == 100000


def test_missing_option_names_it():
    with pytest.raises(OptionMissingException, match=r"--layer-def .*not supplied"):
        _parse([a for a in REQUIRED if not a.startswith("--layer-def")])


def test_load_file_excuses_everything_and_check_grads_the_data():
    op = _parse(["-f", "/some/dir"])
    assert op.get_value("load_file") == "/some/dir" and op.get_value("train_batch_range") is None
    op = _parse(["--check-grads=1", "--layer-def=l.cfg", "--layer-params=p.cfg"])
    assert op.get_value("check_grads") == 1
    with pytest.raises(OptionMissingException):
        _parse(["--check-grads=1", "--layer-params=p.cfg"])


def test_requires():
    with pytest.raises(OptionMissingException, match="--test-out .* requires option"):
        _parse(REQUIRED + ["--test-out=/tmp/x", "--multiview-test=1"])
    _parse(REQUIRED + ["--test-out=/tmp/x", "--multiview-test=1", "--logreg-name=logprob"])


def test_stray_argument_is_refused():
    with pytest.raises(OptionException, match="unexpected argument"):
        _parse(REQUIRED + ["oops"])


def test_merge_on_resume_set_once_and_saved_values():
    saved = _parse(REQUIRED + ["--epochs=10", "--crop-border=4"])
    state = saved.to_state()
    old = ConvNet.get_options_parser()
    for o in old.options.values():
        o.set_default()
    old.load_state(state)
    new = ConvNet.get_options_parser()
    new.parse(["-f", "/x", "--epochs=20"])
    old.merge_from(new)
    assert old.get_value("num_epochs") == 20           # given anew: wins
    assert old.get_value("train_batch_range") == [1, 2, 3, 4, 5]  # saved: kept
    assert old.get_value("load_file") == "/x"
    for forbidden in ("--layer-def=other.cfg", "--crop-border=16"):
        new = ConvNet.get_options_parser()
        new.parse(["-f", "/x", forbidden])
        with pytest.raises(OptionException, match="cannot be changed"):
            old.merge_from(new)


def test_unsaved_options_take_the_new_default_on_resume():
    saved = _parse(REQUIRED + ["--backend=numpy", "--trust-pickle=1"])
    state = saved.to_state()
    assert "backend" not in state and "trust_pickle" not in state
    old = ConvNet.get_options_parser()
    for o in old.options.values():
        o.set_default()
    old.load_state(state)
    new = ConvNet.get_options_parser()
    new.parse(["-f", "/x"])
    old.merge_from(new)
    assert old.get_value("backend") == "auto"


def test_help_lists_every_option_with_defaults(capsys):
    op = ConvNet.get_options_parser()
    with pytest.raises(SystemExit) as e:
        op.parse(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for o in op.options.values():
        assert o.prefixed_letter in out, o.prefixed_letter
    assert "[50]" in out and "[50000]" in out and "[128]" in out  # test-freq, epochs, mini
    assert "excused by -f" in out
    assert "\033[" not in out  # no bold codes when not a terminal


def test_print_values_marks_defaults():
    op = _parse(REQUIRED)
    buf = io.StringIO()
    op.print_values(file=buf)
    lines = buf.getvalue().splitlines()
    assert any(line.startswith("Minibatch size") and line.rstrip().endswith("[DEFAULT]") for line in lines)
    assert any(line.startswith("Layer definition file") and "l.cfg" in line and "[DEFAULT]" not in line
               for line in lines)


def test_parsers_directly():
    assert RangeOptionParser.parse("3") == [3]
    assert RangeOptionParser.to_string([1, 2, 3]) == "1-3"
    assert BooleanOptionParser.parse("0") == 0
    assert ListOptionParser([FloatOptionParser, IntegerOptionParser]).parse("0.5,3") == [0.5, 3]
    with pytest.raises(OptionException):
        ListOptionParser([FloatOptionParser, IntegerOptionParser]).parse("0.5")
    assert ListOptionParser(StringOptionParser).parse("a,b") == ["a", "b"]
    assert FloatOptionParser.to_string(0.1) == "0.1"
    op = OptionsParser()
    op.add_option("n", "n", IntegerOptionParser, "N", default=2)
    op.add_option("m", "m", IntegerOptionParser, "M", default=OptionExpression("n * 3", lambda v: v["n"] * 3))
    op.parse(["-n", "5"], eval_expr_defaults=True)
    assert op.get_value("m") == 15
