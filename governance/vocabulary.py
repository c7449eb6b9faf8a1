"""Governance vocabularies: rule statuses, legal preconditions, context exclusions.

Declared here, not in ``models``, so the pure decision engine can import the
same values the model fields store (see ``consentry.vocabulary``).
"""

from __future__ import annotations

from consentry.vocabulary import Vocabulary


class RuleStatus(Vocabulary):
    ALLOW = "allow", "Allowed"
    CONDITIONAL = "conditional", "Allowed under conditions"
    BLOCK = "block", "Blocked"


class PreconditionType(Vocabulary):
    """Legal preconditions a rule can require, and the evidence that meets each."""

    COMPANY_WRITTEN_POLICY = "company_written_policy", "Company written monitoring policy"
    NOTICE_ACKNOWLEDGEMENT = "notice_acknowledgement", "Employee acknowledged the current notice"
    NOTICE_ACKNOWLEDGEMENT_ONCE = "notice_acknowledgement_once", "Employee acknowledged a notice once"
    NOTICE_AT_COLLECTION = "notice_at_collection", "Notice at collection received and acknowledged"
    PRIOR_WRITTEN_NOTICE = "prior_written_notice", "Prior written notice posted"
    MONITORING_POLICY_DELIVERED = "monitoring_policy_delivered", "Written electronic-monitoring policy delivered"
    BIOMETRIC_RELEASE = "biometric_release", "Written biometric release from the employee"
    WORKS_COUNCIL_AGREEMENT = "works_council_agreement", "Works-council agreement"
    UNION_AGREEMENT = "union_agreement", "Union agreement"
    LABOUR_OFFICE_AUTHORISATION = "labour_office_authorisation", "Labour-office authorisation"
    CSE_CONSULTATION = "cse_consultation", "CSE consultation"
    DPIA = "dpia", "Data protection impact assessment"
    LEGITIMATE_INTEREST_ASSESSMENT = "legitimate_interest_assessment", "Legitimate-interest assessment"


class ExclusionKind(Vocabulary):
    APP = "app", "Application"
    DOMAIN = "domain", "Web domain"
    FLAG = "flag", "Context flag (e.g. private browsing)"


class ExclusionReason(Vocabulary):
    PASSWORD_MANAGER = "password_manager", "Password manager"
    BANKING = "banking", "Banking and finance"
    HEALTH = "health", "Health"
    PERSONAL_MAIL = "personal_mail", "Personal mail"
    PRIVATE_BROWSING = "private_browsing", "Private browsing"
    OTHER = "other", "Other"
