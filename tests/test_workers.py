"""The worker class of the Procfile (service.workers): the shared board that decides which worker takes a new
connection. The end-to-end behaviour (connections opened at once spread over the workers) is in
tests/test_procfile_e2e.py."""

from __future__ import annotations

import os

from service.workers import LIVE_SECONDS, ConnectionBoard


def test_a_worker_may_accept_while_no_live_worker_holds_fewer_connections():
    board = ConnectionBoard(4)
    a, b = board.claim(101, now=10.0), board.claim(102, now=10.0)
    assert a != b
    assert board.may_accept(a, now=10.0) and board.may_accept(b, now=10.0)  # a tie: both may
    board.publish(a, 1, now=10.0)
    assert not board.may_accept(a, now=10.0)  # b holds fewer: a waits
    assert board.may_accept(b, now=10.0)
    board.publish(b, 1, now=10.0)
    assert board.may_accept(a, now=10.0) and board.may_accept(b, now=10.0)
    assert board.counts() == {101: 1, 102: 1}


def test_a_worker_without_a_recent_heartbeat_does_not_hold_the_others_back():
    board = ConnectionBoard(4)
    a, b = board.claim(101, now=10.0), board.claim(102, now=10.0)
    board.publish(a, 5, now=10.0 + LIVE_SECONDS + 1)  # b (0 connections) said nothing since 10.0
    assert board.may_accept(a, now=10.0 + LIVE_SECONDS + 1)
    board.publish(b, 0, now=10.0 + LIVE_SECONDS + 1)  # alive again: it goes first
    assert not board.may_accept(a, now=10.0 + LIVE_SECONDS + 1)


def test_slots_are_released_and_reclaimed_and_a_full_board_says_so():
    board = ConnectionBoard(2)
    a = board.claim(101, now=10.0)
    b = board.claim(102, now=10.0)
    assert board.claim(103, now=10.0) is None  # full: that worker accepts like a plain uvicorn worker
    board.release(a, 101)
    assert board.claim(103, now=10.0) == a
    assert board.claim(104, now=10.0 + LIVE_SECONDS + 1) == a  # a stale row (dead worker) is taken over
    board.release(b, 999)  # only its owner releases a row
    assert board.counts()[102] == 0


def test_the_board_is_shared_with_forked_processes():
    board = ConnectionBoard(2)
    slot = board.claim(os.getpid())
    pid = os.fork()
    if pid == 0:  # the child publishes; the parent reads it
        board.publish(slot, 7)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.counts()[os.getpid()] == 7
