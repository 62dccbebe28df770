"""What the demo workload's customers and agents write: subjects by (sub)category,
details, questions, comments, resolutions and reasons (`ticketflow.tools.workload`).

Keyed by the names the shipped policies use (subcategories for personalysispro,
categories for growgrebuddy, escalation levels); the names themselves are the
policies' (domain/policies/*.toml).
"""

from __future__ import annotations

PP_SUBJECTS: dict[str, tuple[str, ...]] = {
    "login": (
        "Cannot log in after password reset",
        "SSO login loops back to the sign-in page",
        "Two-factor code never arrives",
    ),
    "access_permissions": (
        "New project lead cannot see shared surveys",
        "Need admin rights for a new team member",
        "Viewer role can edit reports",
    ),
    "account_verification": (
        "Verification email not received",
        "Domain verification keeps failing",
        "Cannot verify the company account",
    ),
    "billing": (
        "Invoice shows the wrong seat count",
        "Charged twice this month",
        "Please add our VAT number to invoices",
    ),
    "application_error": (
        "Survey builder crashes when adding skip logic",
        "Error 500 when opening the dashboard",
        "Export button does nothing",
    ),
    "performance": (
        "Dashboards load very slowly",
        "Report generation times out",
        "Survey pages are slow for respondents",
    ),
    "integration": (
        "Salesforce sync stopped overnight",
        "Webhook deliveries are failing",
        "Slack notifications are missing",
    ),
    "data_import_export": (
        "Exports time out",
        "CSV import rejects a valid file",
        "SPSS export is missing variables",
    ),
    "new_feature": (
        "Request: quotas per answer option",
        "Request: offline survey mode for field teams",
        "Request: dark theme for respondents",
    ),
    "enhancement": (
        "Allow bulk editing of questions",
        "Better filters in the response viewer",
        "Keyboard shortcuts in the survey builder",
    ),
    "integration_possibility": (
        "Is a HubSpot integration possible?",
        "Microsoft Teams integration?",
        "Native Power BI connector",
    ),
    "survey_creation": (
        "Cannot duplicate a survey",
        "Question piping shows the wrong value",
        "Branching logic skips a page",
    ),
    "response_collection": (
        "Responses from mobile are not recorded",
        "Panel link quota is not enforced",
        "Duplicate responses from the same respondent",
    ),
    "data_analysis": (
        "Cross-tab totals do not match",
        "Weighting gives odd results",
        "Sentiment analysis missing for German answers",
    ),
    "report_generation": (
        "Scheduled report was not sent",
        "PDF report cuts off charts",
        "Branding missing in the shared report",
    ),
    "data_privacy": (
        "GDPR deletion request for a respondent",
        "We need a data processing agreement",
        "Respondent asks for a copy of their data",
    ),
    "vulnerability": (
        "Possible XSS in the survey preview",
        "Security researcher report",
        "Session not invalidated after logout",
    ),
    "compliance": (
        "Request for the SOC 2 report",
        "HIPAA configuration question",
        "Data residency for our EU accounts",
    ),
}
GB_SUBJECTS: dict[str, tuple[str, ...]] = {
    "account": (
        "Can't sign in to the app",
        "Lost access after changing my phone",
        "How do I change my email address?",
        "My account is locked",
    ),
    "billing_payments": (
        "Charged after cancelling Premium",
        "Refund for an accidental purchase",
        "Payment declined in the app",
        "Premium not activated after paying",
    ),
    "app_functionality": (
        "Watering reminders are not firing",
        "Sync between my devices does not work",
        "Photo upload is stuck",
        "Garden planner won't save",
    ),
    "feature_request": (
        "Please add a watering calendar export",
        "Dark mode please",
        "Support for hydroponic setups",
        "A home-screen widget would be great",
    ),
    "bug_report": (
        "App crashes on launch after the update",
        "Soil sensor readings show zero",
        "Notifications arrive twice",
        "Map view is blank on Android",
    ),
    "data_privacy": (
        "Delete my account and my data",
        "Who can see my garden photos?",
        "Export my personal data",
        "Unexpected marketing emails",
    ),
}
DETAILS = (
    "This started this morning and blocks part of my team.",
    "It worked fine last week; nothing changed on our side.",
    "Steps: open the page, click the button, wait. Screenshot attached.",
    "We tried another browser and a different network, same result.",
    "Happens every time for some users, never for others.",
    "Could you look into this before our deadline on Friday?",
    "Not urgent, but it is annoying for everyone involved.",
    "Please advise on how to proceed.",
)
INCIDENT_SUBJECTS = (
    "Dashboard returns error 500",
    "Survey links show a maintenance page",
    "Responses are not being saved",
)
RESOLUTIONS = (
    "Root cause identified and fixed; confirmed working on our side.",
    "Configuration corrected for the account.",
    "Explained the setting that controls this behaviour; customer confirmed.",
    "Fix deployed in today's release.",
    "Workaround provided while a permanent fix is scheduled.",
    "Cache cleared and data re-synced.",
    "Permissions updated as requested.",
    "Answered with step-by-step instructions and a knowledge-base article.",
)
QUICK_RESOLUTIONS = (
    "Duplicate of an existing ticket.",
    "Customer solved it before we replied.",
    "Sent to the wrong support address; forwarded to sales.",
)
NO_RESPONSE = "No response from the customer after two reminders; resolving."
BACKLOG_RESOLUTIONS = (
    "Shipped in this week's release.",
    "Added to the roadmap; we will notify you when it is available.",
    "Not planned for now; feedback shared with the product team.",
)
QUESTIONS = (
    "Could you send a screenshot of the error?",
    "Which browser and version are you using?",
    "Can you share the ID of the affected survey?",
    "When did this last work for you?",
    "Could you export the log from Settings > Diagnostics?",
    "Which device and app version do you use?",
)
INTERNAL_NOTES = (
    "Reproduced on staging.",
    "Looks related to last night's deployment.",
    "Checked logs: timeouts from the export worker.",
    "Customer is on an old app version.",
    "Asked the specialists for a second opinion.",
    "Known issue, linking the internal bug.",
)
AGENT_UPDATES = (
    "Thanks for your patience, we are still investigating.",
    "We have found the cause and are working on a fix.",
    "A fix is being tested now.",
    "Quick update: the team is on it.",
)
CUSTOMER_COMMENTS = (
    "Any news on this?",
    "Adding more details: it also happens on the second workspace.",
    "This is getting urgent for us.",
    "Here is the screenshot you asked for.",
    "Thanks!",
)
THANKS = ("Thanks, all good now!", "Works again, thank you.", "Great, much appreciated.")
REOPEN_REASONS = (
    "The problem is back.",
    "The fix did not work for all users.",
    "Still seeing the same error.",
)
AGENT_REOPEN_REASONS = ("Regression found during follow-up.", "Fix rolled back.")
SAT_COMMENTS = (
    "Fast and friendly.",
    "Took longer than I hoped.",
    "Solved my problem, thanks.",
    "Had to explain the issue twice.",
    "Great support!",
)
ESCALATION_REASONS = {
    "first_level": "Needs a senior agent.",
    "second_level": "Needs the technical specialists.",
    "management": "Customer impact requires management attention.",
    "tier2": "Technical issue beyond tier 1.",
    "tier3": "Needs a developer.",
}
PRIORITY_REASONS = ("Impact clarified with the customer.", "More users affected than reported.")


#: The knowledge base the demo starts with: article id → (title, body, tags). The ids
#: are among those the workload links and self-service sessions open.
ARTICLES: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "personalysispro": {
        "KB-PP-00001": ("Signing in after a password reset",
                        "If you cannot log in after a password reset, clear the saved"
                        " password in your browser and sign in with the new one. SSO"
                        " accounts reset their password with their identity provider.",
                        ("login", "password")),
        "KB-PP-00002": ("Dashboards that load slowly",
                        "Dashboards with many charts load slowly. Filter them to a date"
                        " range, or split them into smaller dashboards.",
                        ("performance", "dashboard")),
        "KB-PP-00003": ("Report generation times out",
                        "Large reports can time out. Schedule the report to run at night"
                        " and receive it by email, or export the raw data instead.",
                        ("reports", "export")),
        "KB-PP-00004": ("Seat counts on invoices",
                        "An invoice counts the seats active on the billing date. Remove"
                        " inactive members before it to lower the seat count.",
                        ("billing", "invoice")),
        "KB-PP-00005": ("Two-factor codes that never arrive",
                        "Check the phone number in your profile, wait a minute, then use a"
                        " backup code. Authenticator apps avoid SMS delays.",
                        ("login", "2fa")),
    },
    "growgrebuddy": {
        "KB-GB-00001": ("Can't sign in to the app",
                        "Update the app, then reset your password from the sign-in screen."
                        " A locked account unlocks itself after 30 minutes.",
                        ("account", "sign-in")),
        "KB-GB-00002": ("Watering reminders are not firing",
                        "Allow notifications for the app and turn off battery saving for"
                        " it; reminders then fire on time.", ("reminders",)),
        "KB-GB-00003": ("Refunds for accidental purchases",
                        "Request a refund within 14 days from the store you paid in; a"
                        " cancelled Premium is not charged again.", ("billing", "refund")),
        "KB-GB-00004": ("Sync between devices",
                        "Sign in with the same account on every device and keep them"
                        " online for a minute; sync runs in the background.", ("sync",)),
    },
}

#: What the demo asks the knowledge base, as a customer would before opening a ticket.
SUGGEST: dict[str, tuple[str, ...]] = {
    "personalysispro": ("I cannot log in after resetting my password",
                        "our dashboard is very slow", "the report times out"),
    "growgrebuddy": ("watering reminders stopped", "I want a refund for a purchase"),
}
