// Reads an iCalendar file on stdin with Mozilla's ical.js (the parser inside Thunderbird)
// and prints each event's UID, SEQUENCE, STATUS, SUMMARY and its instants in UTC, as JSON.
import ICAL from "ical.js";

let text = "";
for await (const chunk of process.stdin) text += chunk;
const calendar = new ICAL.Component(ICAL.parse(text));
const events = calendar.getAllSubcomponents("vevent").map((component) => {
  const event = new ICAL.Event(component);
  const utc = (time) => time.toJSDate().toISOString();
  return {
    uid: event.uid,
    sequence: event.sequence,
    status: component.getFirstPropertyValue("status"),
    summary: event.summary,
    description: event.description,
    start: utc(event.startDate),
    end: utc(event.endDate),
  };
});
const name = calendar.getFirstPropertyValue("x-wr-calname");
process.stdout.write(JSON.stringify({ name, events }));
