"""The sidebar: the run's controls (Reset, Play/Pause, Step, Run to end, Jump to month), where
the run stands, and the levers with their values.

Levers take effect on Reset, which rebuilds the model from them (as Mesa's SolaraViz does);
until then the sidebar says which ones are pending. Play steps the model in a background task
and redraws after each month; Run to end and Jump to month step without drawing and redraw
once, so a whole run takes about as long as the model itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import solara
from mesa.visualization.utils import force_update, update_counter

from analysis.webapp import levers as lv
from analysis.webapp.run import MarketApp

#: Milliseconds between two steps while playing.
PLAY_INTERVAL_MS = 300


@solara.component
def RunStatus(model: MarketApp):
    """Where the run stands: not started, running or finished, and the step counter."""
    update_counter.get()
    if model.finished:
        solara.Success(model.status(), icon=False, dense=True)
    else:
        solara.Text(model.status())
    solara.Text(f"Step: {model.step_index}")


@solara.component
def LeverInputs(pending: solara.Reactive[dict], applied: dict):
    """One input per lever, its label showing its value; a lever whose value differs from the
    model's is marked "(on Reset)"."""
    values = pending.value
    for lever in lv.levers(values["scenario"]):
        value = values[lever.name]
        label = lever.shown(value) + ("  (on Reset)" if value != applied.get(lever.name)
                                      else "")

        def set_value(v, name=lever.name):
            new = {**pending.value, name: v}
            if name == "scenario":          # the other levers start at its own values
                base = lv.defaults(v)
                new = {**base, "seed": pending.value["seed"]}
            pending.value = new

        with solara.Div(classes=["gpumarket-lever"]):
            if lever.kind == "select":
                choices = list(lever.choices)
                if value not in choices:     # a start outside a new scenario's run: shown
                    choices.append(value)    # so that Reset can say what is wrong with it
                solara.Select(label=label, value=value, values=choices, on_value=set_value)
            elif lever.kind == "text":
                solara.InputText(label=label, value=str(value), on_value=set_value,
                                 continuous_update=False)
            else:
                # the label above its slider: beside it, a long label squeezes the slider
                solara.Text(label, style={"font-size": "0.95em"})
                if lever.kind == "slider_int":
                    solara.SliderInt("", value=int(value), min=int(lever.low),
                                     max=int(lever.high), step=int(lever.step),
                                     on_value=set_value, thumb_label=False)
                else:
                    solara.SliderFloat("", value=float(value), min=lever.low, max=lever.high,
                                       step=lever.step, on_value=set_value, thumb_label=False)
            if lever.help:
                solara.Text(lever.help, style={"font-size": "0.8em", "color": "#666",
                                               "margin-top": "-12px", "margin-bottom": "8px"})


@solara.component
def Controls(model: solara.Reactive[MarketApp], pending: solara.Reactive[dict],
             build: Callable[[dict], MarketApp], gone: threading.Event):
    """The run's buttons, its status and the levers."""
    playing = solara.use_reactive(False)
    error = solara.use_reactive(None)
    # one model step at a time (Play's task, Step, Run to end); a newer Play task ends an
    # older one still sleeping (its generation is no longer the latest)
    lock = solara.use_memo(threading.Lock, [])
    generation = solara.use_memo(lambda: [0], [])

    def play_loop():
        if not playing.value:
            return
        generation[0] += 1
        mine = generation[0]
        try:
            while (playing.value and generation[0] == mine and model.value.running
                   and not gone.is_set()):
                time.sleep(PLAY_INTERVAL_MS / 1000)
                with lock:
                    if not playing.value or generation[0] != mine:
                        break
                    model.value.step()
                force_update()
        except Exception as exc:           # shown on the page, not lost in a thread
            error.value = f"error in step: {exc}"
        if generation[0] == mine:
            playing.value = False

    solara.lab.use_task(play_loop, dependencies=[playing.value], prefer_threaded=True)

    def reset():
        playing.value = False
        error.value = None
        model.value = build(dict(pending.value))
        force_update()

    def step():
        with lock:
            model.value.step()
        force_update()

    def run_to(index: int):
        playing.value = False
        with lock:
            current = model.value
            if index < current.step_index:      # back in time: the same run from its start
                current = build(dict(current.levers))
                model.value = current
            current.run_to(index, stop=gone)
        force_update()

    def go(text: str):
        index = model.value.month_index(text)
        if index is None:
            error.value = (f"Jump to month: expected a month from {model.value.month_of(1)} "
                           f"to {model.value.month_of(model.value.run_months)}, got {text!r}")
            return
        error.value = None
        run_to(index)

    with solara.Card("Run", margin=0):
        RunButtons(model.value, playing, error, step, run_to, reset, go)
    with solara.Card("Levers (applied on Reset)", margin=0, style={"margin-top": "12px"}):
        LeverInputs(pending, model.value.levers)


@solara.component
def RunButtons(m: MarketApp, playing, error, step, run_to, reset, go):
    """Status and buttons: the part of the sidebar a step changes (it alone reads Mesa's
    update counter, so the levers are not redrawn every month)."""
    update_counter.get()
    jump, set_jump = solara.use_state("")
    finished = not m.running
    if m.error:                 # here, where the user pressed Reset, not below the fold
        solara.Error(f"Levers not applied: {m.error}")
    RunStatus(m)
    with solara.Row(justify="space-between"):
        solara.Button("Reset", color="primary", on_click=reset)
        solara.Button("❚❚" if playing.value else "▶", color="primary",
                      on_click=lambda: playing.set(not playing.value), disabled=finished)
        solara.Button("Step", color="primary", on_click=step,
                      disabled=playing.value or finished)
    with solara.Row(justify="space-between", style={"margin-top": "8px"}):
        solara.Button("Run to end", color="primary", outlined=True,
                      on_click=lambda: run_to(m.run_months),
                      disabled=playing.value or finished)
    with solara.Row(style={"align-items": "center"}):
        solara.InputText(label="Jump to month (YYYY-MM)", value=jump,
                         on_value=set_jump, continuous_update=True)
        solara.Button("Go", outlined=True, disabled=not jump or playing.value,
                      on_click=lambda: go(jump))
    if error.value:
        solara.Error(error.value)
