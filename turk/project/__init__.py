"""Curation projects: ``turk.yaml``, ``turk init``, ``turk run``, ``turk demo``, ``turk doctor``.

A project is a folder with a ``turk.yaml`` (what to curate and how), a concepts file,
instruction files, a gold file and the ledger (``turk.db``). :mod:`turk.project.config`
reads and checks the file; :mod:`turk.project.scaffold` writes a new project;
:mod:`turk.project.pipeline` runs the stages from it (the one orchestrator), remembering
in the ledger what each stage ran with; :mod:`turk.project.demo` is ``turk init
--from-sample`` plus that same pipeline; :mod:`turk.project.doctor` checks the machine
and the project.
"""

from turk.project.config import PROJECT_FILE, ProjectConfig, find_project, load_project

__all__ = ["PROJECT_FILE", "ProjectConfig", "find_project", "load_project"]
