"""The bundled example flows, driven end to end through flows.testing."""

from __future__ import annotations

from flows.examples import EXAMPLES_DIR
from flows.testing import FlowConversation

CONTACT = "+15550001234"
JOIN = EXAMPLES_DIR / "join_keyword.json"
APPOINTMENT = EXAMPLES_DIR / "appointment_confirmation.json"
SURVEY = EXAMPLES_DIR / "survey.json"
RESEND = EXAMPLES_DIR / "resend_failed_other_sim.json"
FORWARD = EXAMPLES_DIR / "forward_to_zapier.json"
JOIN_HOOK = "https://hooks.zapier.com/hooks/catch/1/abc/"
FORWARD_HOOK = "https://hooks.zapier.com/hooks/catch/123456/abcdef/"


# -- JOIN keyword -----------------------------------------------------------------------------


async def test_join_in_any_case_welcomes_tags_and_forwards() -> None:
    convo = FlowConversation(JOIN, contact=CONTACT)
    await convo.says("jOiN News")
    convo.expect_reply(r"^Welcome to News! Reply STOP to opt out\.$")
    convo.expect_http(
        url=JOIN_HOOK,
        method="POST",
        json_contains={"body": "jOiN News", "from": CONTACT, "event_type": "sms.received"},
    )
    convo.expect_run("completed")
    contact = convo.harness.effects.contact(CONTACT)
    assert contact.tags == ("subscriber",) and contact.fields == {"list": "news"}


async def test_join_alone_and_other_words() -> None:
    convo = FlowConversation(JOIN, contact=CONTACT)
    await convo.says("JOIN")
    convo.expect_reply(r"^Welcome! Reply STOP")
    await convo.says("hello")  # not a keyword: nothing happens
    convo.expect_no_reply()
    assert len(convo.harness.runs()) == 1


async def test_join_retries_zapier_without_resending_the_welcome() -> None:
    convo = FlowConversation(JOIN, contact=CONTACT)
    convo.harness.effects.respond(JOIN_HOOK, status=503, times=2)
    await convo.says("join")
    convo.expect_reply("Welcome")
    convo.expect_run("waiting")
    await convo.wait(seconds=30)  # first retry after 30 s: still 503
    await convo.wait(seconds=60)  # second retry after another 60 s: 200
    convo.expect_run("completed")
    convo.expect_no_reply()
    assert [c.outcome.status for c in convo.harness.effects.http] == [503, 503, 200]


async def test_join_from_an_opted_out_contact_is_suppressed_by_the_pipeline() -> None:
    convo = FlowConversation(JOIN, contact=CONTACT, opted_out=True)
    await convo.says("join")
    convo.expect_suppressed("opted_out")
    convo.expect_no_reply()
    convo.expect_run("completed")


# -- appointment confirmation ------------------------------------------------------------------

BOOKING = {"phone": CONTACT, "name": "Ann", "when": "Tue 3 pm"}


async def test_appointment_yes_confirms() -> None:
    convo = FlowConversation(APPOINTMENT, contact=CONTACT)
    await convo.http_trigger(BOOKING)
    convo.expect_reply(r"Hi Ann, your appointment is on Tue 3 pm\. Reply Y to confirm or N")
    await convo.says("y")
    convo.expect_reply(r"confirmed")
    convo.expect_run("completed")


async def test_appointment_no_cancels() -> None:
    convo = FlowConversation(APPOINTMENT, contact=CONTACT)
    await convo.http_trigger(BOOKING)
    convo.expect_reply("Reply Y")
    await convo.says(" NO ")
    convo.expect_reply(r"has been cancelled")
    convo.expect_run("completed")


async def test_appointment_unclear_answer_asks_again() -> None:
    convo = FlowConversation(APPOINTMENT, contact=CONTACT)
    await convo.http_trigger(BOOKING)
    convo.expect_reply("Reply Y")
    await convo.says("maybe?")
    convo.expect_reply(r"^Sorry, please reply Y")
    await convo.says("Yes")
    convo.expect_reply("confirmed")


async def test_appointment_silence_reminds_then_times_out() -> None:
    convo = FlowConversation(APPOINTMENT, contact=CONTACT)
    await convo.http_trigger(BOOKING)
    convo.expect_reply("Reply Y")
    await convo.wait(hours=23)
    convo.expect_no_reply()
    await convo.wait(hours=1)  # the 24 h timeout
    convo.expect_reply(r"^Reminder: please reply Y")
    await convo.wait(hours=12)
    convo.expect_reply(r"did not hear back.*not confirmed")
    convo.expect_run("completed")


async def test_appointment_answer_after_the_reminder() -> None:
    convo = FlowConversation(APPOINTMENT, contact=CONTACT)
    await convo.http_trigger(BOOKING)
    convo.expect_reply("Reply Y")
    await convo.wait(days=1)
    convo.expect_reply("Reminder")
    await convo.says("n")
    convo.expect_reply("cancelled")
    await convo.wait(days=2)  # the old timers are stale
    convo.expect_no_reply()


# -- survey ------------------------------------------------------------------------------------


async def test_survey_three_questions_stored_on_the_contact() -> None:
    # Six SMS in a minute: above the default loop breaker (5 per 10 minutes), which would
    # suppress the thank-you (see the next test). A real contact takes longer to answer.
    convo = FlowConversation(SURVEY, contact=CONTACT, loop_limit=10)
    await convo.says("Survey")
    convo.expect_reply(r"^Q1/3")
    await convo.says("seven")
    convo.expect_reply(r"number from 1 to 5")
    convo.expect_reply(r"^Q1/3")  # asked again
    await convo.says(" 4 ")
    convo.expect_reply(r"^Q2/3")
    await convo.says("Yes!")
    convo.expect_reply(r"^Q3/3")
    await convo.says("Faster replies")
    convo.expect_reply(r"^Thank you for your answers!$")
    run = convo.expect_run("completed")
    assert run.vars == {"rating": 4, "recommend": True}
    contact = convo.harness.effects.contact(CONTACT)
    assert contact.fields == {
        "survey_rating": "4",
        "survey_recommend": "yes",
        "survey_comment": "Faster replies",
    }
    assert contact.tags == ("surveyed",)


async def test_survey_low_rating_promises_a_call() -> None:
    convo = FlowConversation(SURVEY, contact=CONTACT)
    await convo.says("survey")
    for answer in ("1", "no", "everything"):
        convo.expect_reply(r"^Q\d/3")
        await convo.wait(minutes=3)  # people take a while to answer
        await convo.says(answer)
    convo.expect_reply(r"Someone from our team will get in touch")
    assert convo.harness.effects.contact(CONTACT).fields["survey_recommend"] == "no"


async def test_survey_answered_too_fast_hits_the_loop_breaker() -> None:
    convo = FlowConversation(SURVEY, contact=CONTACT)
    await convo.says("survey")
    for answer in ("x", "x", "2", "y", "ok"):  # two bad ratings: more questions
        await convo.says(answer)
    for _ in range(5):
        convo.expect_reply(".")
    convo.expect_suppressed("loop_breaker")


async def test_survey_closes_when_the_contact_goes_quiet() -> None:
    convo = FlowConversation(SURVEY, contact=CONTACT)
    await convo.says("survey")
    convo.expect_reply("Q1")
    await convo.says("5")
    convo.expect_reply("Q2")
    await convo.wait(hours=1)
    convo.expect_reply(r"survey has closed")
    convo.expect_run("completed")
    await convo.says("yes")  # too late: no run waits any more, no keyword either
    convo.expect_no_reply()


# -- resend through the other SIM --------------------------------------------------------------


async def test_failed_message_is_resent_on_the_other_sim() -> None:
    convo = FlowConversation(RESEND, contact=CONTACT)
    await convo.delivery_status(
        "failed", body="Your code is 1234", sim_slot=0, error="RESULT_ERROR_GENERIC_FAILURE"
    )
    sent = convo.expect_sms(to=CONTACT, pattern=r"^Your code is 1234$", sim_slot=1)
    assert sent.command.channel_id == "ch_test" and sent.command.device_id == "dev_test"
    convo.expect_run("completed")


async def test_failure_on_the_fallback_sim_is_not_resent() -> None:
    convo = FlowConversation(RESEND, contact=CONTACT)
    await convo.delivery_status("failed", body="Your code is 1234", sim_slot=1)
    convo.expect_no_reply()
    run = convo.expect_run("completed")
    assert run.outputs["give_up"]["reason"] == "failed on SIM 1 (the fallback); not resent"


async def test_delivered_messages_start_nothing() -> None:
    convo = FlowConversation(RESEND, contact=CONTACT)
    await convo.delivery_status("delivered", body="hi")
    assert convo.run is None


# -- forward to Zapier -------------------------------------------------------------------------


async def test_every_inbound_sms_is_forwarded_flat() -> None:
    convo = FlowConversation(FORWARD, contact=CONTACT)
    await convo.says("hello there")
    await convo.says("second")
    for body in ("hello there", "second"):
        convo.expect_http(
            url=FORWARD_HOOK,
            json_contains={
                "body": body,
                "from": CONTACT,
                "to": "+15559876543",
                "channel_id": "ch_test",
                "event_type": "sms.received",
            },
        )
    convo.expect_no_reply()


async def test_forward_retries_while_zapier_is_down() -> None:
    convo = FlowConversation(FORWARD, contact=CONTACT)
    convo.harness.effects.respond(FORWARD_HOOK, error="connection refused", times=3)
    await convo.says("hello")
    await convo.wait(minutes=10)  # backoff 30 s, 60 s, 120 s
    convo.expect_run("completed")
    assert [c.outcome.status for c in convo.harness.effects.http] == [None, None, None, 200]


async def test_replies_to_a_waiting_conversation_are_not_forwarded() -> None:
    convo = FlowConversation(SURVEY, FORWARD, contact=CONTACT)
    await convo.says("survey")  # starts the survey and is forwarded
    convo.expect_http(json_contains={"body": "survey"})
    await convo.says("3")  # an answer: goes to the survey only
    convo.expect_no_http()
    convo.expect_reply("Q1")
    convo.expect_reply("Q2")
