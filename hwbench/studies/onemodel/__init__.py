"""The OneModel study (Al-Rawi & Valveny, ICCVW 2019): one network, one PHOC output
layer and one BCE-with-logits loss for every task, versus one model per task.

- :mod:`.spec`: torch-free task definition shared by plan, job and report;
- :mod:`.plan`: torch-free: config checks, the runs, each job's inputs and params
  (the rules in workflow/rules/onemodel.smk call it);
- :mod:`.job`: one training job (data, vocabulary, PHOC loss, evaluation);
- :mod:`.report`: the paper's Table 3, the table, the collision counts, the loss figure;
- helpers: :mod:`.labels` (words, the sensory discriminator, the vocabulary),
  :mod:`.phoc` (the PHOC encoder), :mod:`.sensory` (the canvas every input goes on).

This file imports nothing, so importing the plan stays torch-free.
"""
