"""Knowledge transfer between character-recognition tasks (Kooverjee et al.; Figs. 2-6).

Three experiment sets, each a (source task, target task) pair; per set three modes:
``control`` (random initialisation), ``frozen`` (the source model, only its final
layer trains) and ``finetuned`` (the source model, every layer trains).

Modules, split along the rerun grain (a report edit reruns only the report):

* :mod:`.spec`: torch-free constants and checks shared by plan, job and report;
* :mod:`.plan`: torch-free; config checks, the runs, each job's inputs and params
  (the Snakemake rules call it);
* :mod:`.job`: a task's data, the transfer of a source model, one training job;
* :mod:`.report`: the run summaries, the table with the paper's findings, the figures.

This file imports nothing, so importing :mod:`.plan` stays torch-free.
"""
