"""tools/tidy_outputs.py: widget state dropped, split streams merged, ANSI codes removed."""

from __future__ import annotations

import json

from tools.tidy_outputs import tidy, tidy_file


def _notebook() -> dict:
    summary = {"output_type": "display_data", "metadata": {},
               "data": {"text/plain": ["\x1b[1mModel: \"cnn\"\x1b[0m\n"],
                        "text/html": ["<pre>Model</pre>"]}}
    outputs = [{"output_type": "stream", "name": "stdout", "text": ["batches per epoch:"]},
               {"output_type": "stream", "name": "stdout", "text": [" 3\n", "done\n"]},
               {"output_type": "stream", "name": "stderr", "text": ["a warning\n"]},
               summary]
    return {"metadata": {"widgets": {"state": {}}, "kernelspec": {}},
            "cells": [{"cell_type": "code", "outputs": outputs, "source": []},
                      {"cell_type": "markdown", "source": ["# Title"]}]}


def test_tidy_merges_streams_strips_ansi_and_widgets():
    nb = tidy(_notebook())
    outputs = nb["cells"][0]["outputs"]
    assert "widgets" not in nb["metadata"] and "kernelspec" in nb["metadata"]
    assert [o.get("name") for o in outputs] == ["stdout", "stderr", None]
    assert "".join(outputs[0]["text"]) == "batches per epoch: 3\ndone\n"
    assert outputs[2]["data"]["text/plain"] == ['Model: "cnn"\n']


def test_tidy_file_reports_whether_it_changed_anything(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(_notebook()))
    assert tidy_file(path) is True
    assert tidy_file(path) is False  # already tidy
