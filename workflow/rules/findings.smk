# The findings scorecard (docs/findings.md): each paper's stated findings tested on
# this run's seeds -> reports/findings.csv. It reads the per-seed records of every
# study (the same files their reports read); each study declares its claims in
# hwbench/studies/<study>/findings.py, the verdict rule is hwbench/findings.py.
FINDINGS = "reports/findings.csv"
FINDINGS_STUDIES = ("multiscript", "transfer", "lifelong", "onemodel", "adaptation")
ALL_TARGETS.append(FINDINGS)


rule findings:
    input:
        multiscript=ms_plan.evals(MS),
        transfer=tr_plan.report_evals(TR),
        lifelong=ll_plan.report_inputs(LL)["evals"],
        # the lifelong test set's size (its jobs record per-task accuracies only)
        lifelong_meta=ll_plan.data_inputs(LL)["meta"],
        lifelong_split=ll_plan.data_inputs(LL)["split"],
        onemodel=om_plan.report_inputs(OM)["evals"],
        adaptation=ad_plan.report_inputs(AD)["scores"],
        script=script_path("findings.py"),
        # every study's findings module and its imports (their report modules, so a
        # report edit reruns the scorecard too)
        code=sorted(
            {p for s in FINDINGS_STUDIES for p in code(f"studies.{s}.findings")}
        ),
    output:
        **table_outputs("findings", "findings", "../report/findings/scorecard.rst"),
    log:
        "logs/findings.log",
    benchmark:
        "benchmarks/jobs/findings.tsv"
    params:
        transfer_sets=TR["sets"],
        lifelong={k: LL[k] for k in ("writers", "test_split", "labels")},
        onemodel={k: OM[k] for k in ("tasks", "discriminator", "phoc_levels", "prime")},
        adaptation_runs=ad_plan.runs(AD),
        adaptation_papers={d: AD["paper"].get(d) for d in ad_plan.datasets(AD)},
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/findings.py"
