"""ticketflow: an event-sourced support-ticket lifecycle engine."""
