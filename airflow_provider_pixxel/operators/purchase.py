"""What every operator that buys shares: a spend budget across runs, and pricing without buying.

:class:`PixxelPurchaseMixin` is used by the order, job and insight operators. Once the price of a
purchase is known (the dry run or estimate each one already makes) and before anything is bought,
:meth:`~PixxelPurchaseMixin.before_purchase`:

* with the ``pixxel_dry_run`` switch on (``dag_run.conf`` or ``params``), pushes the price to XCom
  (key ``pixxel_price``) and skips the task: nothing is bought, downstream tasks are skipped;
* with a budget (``budget_tokens``/``budget_period`` on the operator, else the connection's extras),
  reads what the project spent in the UTC calendar period from the API and fails the task with
  ``AirflowFailException`` when that plus this price is above the budget.

The check and the purchase are two requests: two tasks checking at the same instant can both pass.
Run purchases in a one-slot Airflow pool and the check is exact; without one, the budget can be
overshot by at most the prices of the purchases that run at the same time.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.utils.arguments import true_or_false
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel.hooks import spend
    from airflow_provider_pixxel.hooks.pixxel import PixxelHook
    from airflow_provider_pixxel.hooks.reconcile import CreationJournal
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    spend = lazy_import("airflow_provider_pixxel.hooks.spend")

#: The run-level switch (``dag_run.conf`` or a DAG param) that makes every purchase price only.
DRY_RUN_SWITCH = "pixxel_dry_run"
#: The XCom key each purchase operator pushes its price under.
PRICE_XCOM_KEY = "pixxel_price"
#: Template fields every purchase operator adds.
BUDGET_TEMPLATE_FIELDS = ("budget_tokens", "budget_period")


def _switch(value: Any, where: str) -> bool:
    # An empty param or conf value (None, "" from a blank form field) leaves the switch off.
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    return true_or_false(f"{where}[{DRY_RUN_SWITCH!r}]", value)


def dry_run_requested(context: Mapping[str, Any]) -> bool:
    """Whether this run only prices its purchases: ``pixxel_dry_run`` in the run's conf, else its params."""
    conf = getattr(context.get("dag_run"), "conf", None)
    if isinstance(conf, Mapping) and DRY_RUN_SWITCH in conf:
        return _switch(conf[DRY_RUN_SWITCH], "dag_run.conf")
    params = context.get("params")
    if isinstance(params, Mapping) and DRY_RUN_SWITCH in params:
        return _switch(params[DRY_RUN_SWITCH], "params")
    return False


def _tokens(amount: float) -> str:
    return f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"


class PixxelPurchaseMixin:
    """The budget and dry-run switch of an operator that buys (orders, workflow jobs, insights).

    :param budget_tokens: the most the project may spend per ``budget_period``, this purchase
        included, as the API reports spend. Unset: the connection's ``budget_tokens`` extra, if any.
    :param budget_period: ``day``, ``week`` (from Monday) or ``month`` (the default): UTC calendar
        periods. With ``budget_tokens`` unset, the connection's ``budget_period`` extra applies.
    """

    budget_tokens: int | str | None
    budget_period: str | None
    task_id: str
    log: Any
    # Given by PixxelResumableOperator, which comes after this mixin's users' other base.
    creation_journal: Callable[[Context], CreationJournal | None]

    if TYPE_CHECKING:

        @property
        def hook(self) -> PixxelHook: ...

    def budget(self) -> tuple[int, str, str] | None:
        """``(tokens, period, where it was set)``, or None; a :class:`PixxelConfigError` before any call."""
        own = spend.check_budget(self.budget_tokens, self.budget_period)
        if own is not None:
            return (*own, "budget_tokens")
        settings = self.hook.settings
        shared = spend.check_budget(
            settings.budget_tokens,
            settings.budget_period,
            where=f"Connection {settings.conn_id!r} extra",
        )
        if shared is None:
            return None
        return (*shared, f"the budget_tokens extra of connection {settings.conn_id!r}")

    def attribution(self, context: Context) -> spend.Attribution | None:
        """This task instance, to be recorded with what it buys (None outside a DAG run)."""
        dag_run = context.get("dag_run")
        run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
        ti = context.get("ti")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
        if not (isinstance(run_id, str) and run_id and isinstance(dag_id, str) and dag_id):
            return None
        task_id = self.task_id
        map_index = getattr(ti, "map_index", -1)
        if isinstance(map_index, int) and map_index >= 0:
            task_id = f"{task_id}[{map_index}]"
        return spend.Attribution(dag_id, task_id, run_id)

    def before_purchase(
        self,
        context: Context,
        price: float | None,
        *,
        subject: str,
        project_ids: Sequence[str],
    ) -> None:
        """Price known, nothing bought yet: push the price; skip on a dry run; refuse above the budget."""
        dry_run = dry_run_requested(context)
        context["ti"].xcom_push(
            key=PRICE_XCOM_KEY,
            value={"dry_run": dry_run, "price": price, "subject": subject, "project_ids": list(project_ids)},
        )
        if dry_run:
            raise AirflowSkipException(
                f"{DRY_RUN_SWITCH} is on: {subject} is priced at "
                f"{'an unknown number of' if price is None else _tokens(price)} tokens and was not bought"
            )
        budget = self.budget()
        if budget is None:
            return
        tokens, period, origin = budget
        journal = self.creation_journal(context)
        from airflow_provider_pixxel.hooks.reconcile import PENDING_CREATION_KEY

        if journal is not None and journal.get(PENDING_CREATION_KEY):
            # An earlier try passed this check and sent the request; the spend read now may already
            # hold that very purchase, so checking again would count it twice. The request is sent
            # again only if it provably made nothing (create_exactly_once).
            self.log.info(
                "An earlier try of this task passed the budget check for %s and sent it; not counting "
                "it a second time",
                subject,
            )
            return
        if not project_ids:
            raise PixxelConfigError(
                f"a budget is kept per project, and {subject} names none: set project_id on the task "
                "or the 'project_id' extra on the Pixxel connection"
            )
        if price is None:
            raise AirflowFailException(
                f"the API gave no usable price for {subject}, so the budget ({origin}={tokens} per "
                f"{period}) cannot be checked; nothing was bought"
            )
        start, end = spend.period_bounds(period, datetime.datetime.now(datetime.timezone.utc))
        purchases = list(spend.iter_purchases(self.hook, project_ids, start, end))
        spent = spend.total(purchases)
        span = f"{start:%Y-%m-%d} to {end:%Y-%m-%d} UTC, end exclusive"
        if spent + price > tokens:
            raise AirflowFailException(
                f"budget exceeded; nothing was bought. Project(s) {', '.join(project_ids)} spent "
                f"{_tokens(spent)} tokens this {period} ({span}, {len(purchases)} purchases) and "
                f"{subject} costs {_tokens(price)}: {_tokens(spent + price)} > budget {_tokens(tokens)} "
                f"per {period} ({origin}). Largest purchases this {period}: {_largest(purchases)}. "
                f"Raise {origin}, wait for the next {period}, or reduce the purchase."
            )
        self.log.info(
            "Budget: project(s) %s spent %s tokens this %s (%s); with %s at %s tokens that is %s of %s",
            ", ".join(project_ids),
            _tokens(spent),
            period,
            span,
            subject,
            _tokens(price),
            _tokens(spent + price),
            _tokens(tokens),
        )


def _largest(purchases: Sequence[spend.Purchase], count: int = 3) -> str:
    ranked = sorted(purchases, key=lambda purchase: purchase.amount, reverse=True)[:count]
    return "; ".join(purchase.describe() for purchase in ranked) or "none"
