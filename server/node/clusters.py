"""Each show's question clusters in this process: where a new question goes.

The record is the truth (a question's `cluster` field, set when it is asked
and changed by merges and splits); this only proposes a cluster for a new
question. Until the matching engine lands (domain/clusters.py), every new
question leads its own cluster.
"""


class Clusters:
    def place(self, qid: str, text: str) -> str:
        """The leader of the cluster a new question joins ("" : its own)."""
        return ""
