"""qianmian.data against what a real version, a real server and the `export` and `report`
commands write: the manifest and its verification, the ranker's input layout, the decision log
and events as numpy columns (compared with the pages and events this test sent), and effect
reports from the command and from the op."""

import json
import math
import os
import shutil
import tempfile
import time
import unittest

import numpy as np

from live import ENV, bank_rows, client, current_version, needs_server, qm
from qianmian import data


@needs_server
class VersionTest(unittest.TestCase):
    def test_manifest_lists_every_file_with_its_size(self):
        manifest = data.read_manifest(ENV["QM_ARTIFACTS"])
        self.assertEqual(manifest["version"], current_version())
        files = data.manifest_files(manifest)
        self.assertIn("rank_inputs.json", list(files["path"]))
        folder = data.version_dir(ENV["QM_ARTIFACTS"])
        sizes = [os.path.getsize(os.path.join(folder, p)) for p in files["path"]]
        np.testing.assert_array_equal(files["size"], np.array(sizes, dtype=np.int64))
        names, values = data.manifest_metrics(manifest)
        self.assertEqual(len(names), len(values))
        self.assertTrue(np.all(np.isfinite(values)))

    def test_verify_version_passes_and_catches_a_changed_file(self):
        self.assertEqual(data.verify_version(ENV["QM_ARTIFACTS"]), [])
        version = current_version()
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, version))
            src = data.version_dir(ENV["QM_ARTIFACTS"])
            for name in os.listdir(src):
                os.symlink(os.path.join(src, name), os.path.join(root, version, name))
            target = os.path.join(root, version, "rank_inputs.json")
            os.unlink(target)
            with open(os.path.join(src, "rank_inputs.json"), "rb") as f:
                text = bytearray(f.read())
            text[-2] = ord(" ") if text[-2] != ord(" ") else ord("\t")  # same size, other bytes
            with open(target, "wb") as f:
                f.write(text)
            os.unlink(os.path.join(root, version, "bundle.json"))
            problems = data.verify_version(root, version)
        self.assertEqual(sorted(p.split(":")[0] for p in problems), ["bundle.json", "rank_inputs.json"])

    def test_missing_versions_are_named(self):
        with self.assertRaisesRegex(FileNotFoundError, "v-nope"):
            data.read_manifest(ENV["QM_ARTIFACTS"], "v-nope")
        with tempfile.TemporaryDirectory() as root, self.assertRaisesRegex(FileNotFoundError, "CURRENT"):
            data.read_manifest(root)

    def test_rank_layout_adds_up_and_bounds_the_ids(self):
        inputs = data.read_rank_inputs(ENV["QM_ARTIFACTS"])
        layout = data.rank_layout(inputs)
        self.assertEqual(len(layout["cat_vocab"]), inputs["C"])
        self.assertEqual(layout["cat"][-1][2], inputs["C"])
        self.assertEqual(layout["dense"][-1][2], inputs["K"])
        with open(os.path.join(data.version_dir(ENV["QM_ARTIFACTS"]), "item_ids.txt")) as f:
            n_items = sum(1 for line in f if line.strip())
        item_col = dict((g, b) for g, b, _ in layout["cat"])["item_id"]
        self.assertGreaterEqual(layout["cat_vocab"][item_col], n_items)
        broken = json.loads(json.dumps(inputs))
        broken["K"] += 1
        with self.assertRaisesRegex(ValueError, "K ="):
            data.rank_layout(broken)


@needs_server
class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.customers = [r["customer_id"] for r in bank_rows("customers.csv")]
        cls.items = [r["item_id"] for r in bank_rows("items.csv")]
        cls.start = int(time.time() * 1000) - 1000

    def export(self, what):
        out = os.path.join(ENV["QM_WORK"], f"{what}-{time.monotonic_ns()}.csv")
        qm("export", what, "--data", ENV["QM_DATA"], "--config", ENV["QM_CONFIG"], "--from", str(self.start),
           "--to", str(int(time.time() * 1000) + 60000), "--out", out)
        return out

    def test_decisions_csv_holds_the_pages_served(self):
        with client() as c:
            pages = [c.recommend(cust, count=3) for cust in self.customers[10:16]]
        table = data.read_decisions_csv(self.export("decisions"))
        self.assertEqual(table["ts_ms"].dtype, np.int64)
        self.assertEqual(table["score"].dtype, np.float64)
        for page in pages:
            rows = np.flatnonzero(table["request_id"] == page["request_id"])
            order = rows[np.argsort(table["position"][rows])]
            self.assertEqual(list(table["item_id"][order]), [i["item_id"] for i in page["items"]])
            np.testing.assert_allclose(table["score"][order], [i["score"] for i in page["items"]], rtol=1e-5,
                                       atol=1e-6)
            self.assertTrue(all(k == "served" for k in table["kind"][order]))
            self.assertEqual(list(table["reasons"][order]), [i["reasons"] for i in page["items"]])
            for arms, reasons in zip(table["arms"][order], table["reasons"][order]):
                self.assertTrue(all(f"experiment:{a}" in reasons for a in arms), (arms, reasons))

    def test_events_csv_holds_the_feedback_sent(self):
        ts = int(time.time() * 1000)
        sent = [dict(ts_ms=ts + k, customer_id=self.customers[20 + k], item_id=self.items[k], type=t,
                     channel="app_home", request_id=f"py-export-{k}-{ts}")
                for k, t in enumerate(("impression", "click", "dismiss"))]
        with client() as c:
            self.assertEqual(c.feedback(sent)["accepted"], 3)
        table = data.read_events_csv(self.export("events"))
        for e in sent:
            rows = np.flatnonzero(table["request_id"] == e["request_id"])
            self.assertEqual(len(rows), 1, e)
            r = rows[0]
            self.assertEqual((int(table["ts_ms"][r]), table["customer_id"][r], table["item_id"][r], table["type"][r]),
                             (e["ts_ms"], e["customer_id"], e["item_id"], e["type"]))

    def test_a_malformed_csv_is_refused_with_its_line(self):
        path = os.path.join(ENV["QM_WORK"], "bad.csv")
        shutil.copy(self.export("events"), path)
        with open(path, "a") as f:
            f.write("1,2\n")
        with self.assertRaisesRegex(ValueError, r"bad.csv:\d+: 2 fields"):
            data.read_events_csv(path)
        with open(path, "w") as f:
            f.write("a,b\n")
        with self.assertRaisesRegex(ValueError, "missing column"):
            data.read_decisions_csv(path)


@needs_server
class ReportTest(unittest.TestCase):
    def check_report(self, report, n_assigned):
        self.assertEqual(list(report["arms"]), ["control", "treat"])
        self.assertEqual(report["total"].shape, (2, len(data.REPORT_METRICS)))
        self.assertEqual(int(report["assigned"].sum()), n_assigned)
        np.testing.assert_array_equal(report["control"], [True, False])
        per = report["total"] / report["assigned"][:, None]
        np.testing.assert_allclose(report["per_customer"], per, rtol=1e-9)
        ok = np.isfinite(report["low"])
        self.assertTrue(np.all(report["low"][ok] <= report["per_customer"][ok] + 1e-12))

    def test_the_report_commands_json_as_arrays(self):
        path = os.path.join(ENV["QM_WORK"], "report.json")
        qm("report", "--data", ENV["QM_DATA"], "--config", ENV["QM_CONFIG"], "--experiment", ENV["QM_LAYER"],
           "--json", path)
        with open(path) as f:
            raw = json.load(f)
        report = data.read_report(path)
        n_customers = len(bank_rows("customers.csv"))
        self.check_report(report, n_customers - raw["holdout_customers"])
        self.assertTrue(np.all(np.isnan(report["lift"][0])))  # the file gives the control no lift
        clicks = data.REPORT_METRICS.index("clicks")
        self.assertEqual(report["lift"][1, clicks], raw["arms"][1]["metrics"]["clicks"]["lift"]["difference"])

    def test_the_report_ops_reply_as_arrays(self):
        with client() as c:
            reply = c.report(ENV["QM_LAYER"])
        report = data.read_report(reply)
        self.check_report(report, int(sum(a["assigned"] for a in reply["arms"])))
        self.assertTrue(np.all(report["lift"][0] == 0))  # the op gives the control a lift of 0
        self.assertFalse(math.isnan(report["lift_p_value"][1, 0]))


if __name__ == "__main__":
    unittest.main()
