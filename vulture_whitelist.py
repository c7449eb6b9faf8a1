"""Names vulture cannot see used: Django, DRF, Celery and other libraries look them up by name.

Vulture reads this file as if it were code, so each name here counts as used wherever it is defined;
consentry/tests/test_dead_code.py runs vulture with it. A name belongs here only with the reason it is
used; anything else vulture reports is dead and is deleted. Never imported or run.
"""

# ruff: noqa: B018, F821 - bare attribute reads on an undefined ``_`` are how vulture whitelists names.

# Django settings: read through django.conf.settings by Django and its add-ons (consentry/settings.py).
_.SECRET_KEY
_.CONSENTRY_SIGNING_KEY
_.CONSENTRY_AUDIT_SIGNING_KEY
_.ALLOWED_HOSTS
_.CSRF_TRUSTED_ORIGINS
_.INSTALLED_APPS
_.MIDDLEWARE
_.ROOT_URLCONF
_.WSGI_APPLICATION
_.ASGI_APPLICATION
_.TEMPLATES
_.DEFAULT_AUTO_FIELD
_.AUTHENTICATION_BACKENDS
_.AUTH_PASSWORD_VALIDATORS
_.LOGIN_URL
_.LOGIN_REDIRECT_URL
_.LOGOUT_REDIRECT_URL
_.GUARDIAN_RAISE_403
_.LANGUAGE_CODE
_.TIME_ZONE
_.USE_I18N
_.USE_TZ
_.STATIC_URL
_.STATICFILES_DIRS
_.MEDIA_ROOT
_.STORAGES
_.SPECTACULAR_SETTINGS
_.CELERY_BROKER_TRANSPORT_OPTIONS
_.CELERY_RESULT_BACKEND
_.CELERY_TASK_ALWAYS_EAGER
_.CELERY_TASK_ACKS_LATE
_.CELERY_TASK_REJECT_ON_WORKER_LOST
_.CELERY_WORKER_PREFETCH_MULTIPLIER
_.CELERY_TASK_SOFT_TIME_LIMIT
_.CELERY_TASK_TIME_LIMIT
_.CELERY_BEAT_SCHEDULE_FILENAME
_.CELERY_TIMEZONE
_.EMAIL_BACKEND
_.EMAIL_HOST
_.EMAIL_PORT
_.EMAIL_HOST_USER
_.EMAIL_HOST_PASSWORD
_.EMAIL_USE_TLS
_.DEFAULT_FROM_EMAIL
_.AXES_ENABLED
_.AXES_FAILURE_LIMIT
_.AXES_COOLOFF_TIME
_.AXES_LOCKOUT_PARAMETERS
_.AXES_RESET_ON_SUCCESS
_.AXES_LOCKOUT_TEMPLATE
_.AXES_IPWARE_PROXY_COUNT
_.OTP_TOTP_ISSUER
_.OIDC_RP_CLIENT_SECRET
_.OIDC_OP_USER_ENDPOINT
_.OIDC_OP_JWKS_ENDPOINT
_.OIDC_RP_SIGN_ALGO
_.OIDC_RP_SCOPES
_.OIDC_USE_PKCE
_.OIDC_TIMEOUT
_.LOGIN_REDIRECT_URL_FAILURE
_.SECURE_SSL_REDIRECT
_.SECURE_PROXY_SSL_HEADER
_.SECURE_HSTS_SECONDS
_.SECURE_HSTS_INCLUDE_SUBDOMAINS
_.SECURE_HSTS_PRELOAD
_.SECURE_CONTENT_TYPE_NOSNIFF
_.SECURE_REFERRER_POLICY
_.SESSION_COOKIE_SECURE
_.SESSION_COOKIE_HTTPONLY
_.CSRF_COOKIE_SECURE
_.X_FRAME_OPTIONS
_.CONTENT_SECURITY_POLICY
_.SECURE_CROSS_ORIGIN_OPENER_POLICY
_.SESSION_COOKIE_AGE
_.SESSION_EXPIRE_AT_BROWSER_CLOSE
_.LOGGING
_.CACHES

# App configs, admin registrations, middleware, context processors, authentication backends, log filters and
# throttles: named by dotted path in settings or found by Django's autodiscovery.
_.AuditConfig
_.ConsentConfig
_.DecisionsConfig
_.GovernanceConfig
_.PeopleConfig
_.ready
_.verbose_name
_.ApiTokenAdmin
_.AuditCheckpointAdmin
_.AuditEntryAdmin
_.AuditExportAdmin
_.CaptureGrantAdmin
_.ConsentEventAdmin
_.ConsentStateAdmin
_.ContextExclusionAdmin
_.DataCategoryAdmin
_.DecisionCounterAdmin
_.EmployeeAdmin
_.JurisdictionRuleAdmin
_.LegalInstrumentAdmin
_.NoticeAcknowledgementAdmin
_.NoticeAdmin
_.PauseAdmin
_.PurposeAdmin
_.RegionAdmin
_.RetentionPolicyAdmin
_.RevocationEventAdmin
_.SecondFactorRequiredMiddleware
_.process_exception
_.navigation
_.EmployeeOIDCBackend
_.verify_claims
_.filter_users_by_claims
_.update_user
_.QuietRoutineTasks
_.ClientErrorsWithoutTraceback
_.CallerRateThrottle
_.document_plain_views
_.audit_access_for

# ModelAdmin options, hooks and actions (Django admin calls them by name).
_.list_display
_.list_filter
_.search_fields
_.date_hierarchy
_.actions
_.can_delete
_.readonly_fields
_.inlines
_.has_add_permission
_.has_change_permission
_.has_delete_permission
_.get_readonly_fields
_.mark_on_leave
_.mark_active
_.terminate
_.revoke

# Model Meta options, and model fields: database columns, written by services and read by the database
# (constraints, triggers, raw SQL in audit.services), serializers or the admin.
_.abstract
_.ordering
_.verbose_name_plural
_.indexes
_.constraints
_.text_before_prev
_.text_before_seq
_.text_after_seq
_.requested_by
_.entry_count
_.started_at
_.finished_at
_.last_event
_.delivered_at
_.last_error
_.outbox_message_id
_.destroyed_at
_.content_object
_.approved_via
_.approved_by_id
_.requires_reconsent
_.token_hash
_.last_used_at
_.first_name
_.last_name
_.RegionUserObjectPermission
_.RegionGroupObjectPermission

# Choices members: stored and compared by value, listed by the forms and the policy packs.
_.IMPORT
_.APP
_.DOMAIN
_.FLAG
_.COMPANY_WRITTEN_POLICY
_.PRIOR_WRITTEN_NOTICE
_.MONITORING_POLICY_DELIVERED
_.WORKS_COUNCIL_AGREEMENT
_.UNION_AGREEMENT
_.LABOUR_OFFICE_AUTHORISATION
_.CSE_CONSULTATION
_.DPIA
_.LEGITIMATE_INTEREST_ASSESSMENT
_.PASSWORD_MANAGER
_.BANKING
_.HEALTH
_.PERSONAL_MAIL
_.PRIVATE_BROWSING
_.__contains__
_._value_
_.do_not_call_in_templates

# DRF views, serializers, permissions, pagination and parsers: handlers, class options, declared fields and
# get_<field>/validate_<field> hooks, all looked up by name.
_.post
_.put
_.perform_destroy
_.permission_classes
_.authentication_classes
_.parser_classes
_.renderer_classes
_.http_method_names
_.lookup_field
_.authenticate_header
_.has_object_permission
_.get_exception_handler
_.get_limit
_.get_offset
_.get_cache_key
_.num_requests
_.default_code
_.force
_.validate
_.validate_categories
_.validate_choices
_.read_only_fields
_.ref_name
_.get_at
_.get_proof
_.get_download
_.get_inclusion
_.get_inclusion_status
_.get_inclusion_detail
_.get_state
_.get_message
_.get_contents
_.get_erasure
_.get_created_by
_.get_approved_by
_.download
_.leaf_index
_.tree_size
_.audit_path
_.acknowledged_at
_.receipts
_.inclusion_status
_.inclusion_detail
_.minutes
_.paused_until
_.rule_region
_.private_browsing
_.simulated
_.assumptions
_.why
_.stopped
_.retained
_.contents
_.erasure
_.scimType

# drf-spectacular: the authentication extension registers itself when defined (people.apps imports it).
_.BearerTokenScheme
_.target_class
_.get_security_definition
_.auto_schema
_.public

# Forms: declared fields, clean_<field> hooks, and field groups the templates iterate.
_.tz
_.pack
_.understood
_.widget
_.default_error_messages
_.clean_region
_.clean_actor
_.clean_subject
_.clean_tz
_.clean_employee
_.clean_pack
_.cap_fields

# Read only by templates: dataclass fields, properties and template filters.
_.first_bad_entry
_.oldest_at
_.stalled
_.missing_employer_preconditions
_.acknowledgement_needed
_.state_label
_.kept_days
_.can_ask
_.place
_.granted_count
_.needs_biometric_release
_.inherited_from
_.added
_.intro
_.headings
_.precondition_names

# URL confs, class-based views, WSGI/ASGI entry points and management commands.
_.urlpatterns
_.app_name
_.handler404
_.handler500
_.application
_.template_name
_.success_url
_.Command
_.help
_.add_arguments

# Celery tasks: scheduled by name in CELERY_BEAT_SCHEDULE or sent through the outbox.
_.checkpoint_tick
_.verify_daily
_.export_sweep
_.expire_consents
_.purge_idempotency_keys
_.relay_outbox
_.rights_sweep
_.data_key_sweep
_.policy_boundaries_announce_task

# Celery task options, typed as a TypedDict (decisions/tasks.py) and passed to @shared_task as keywords.
_.bind
_.ignore_result
_.acks_late
_.reject_on_worker_lost
_.max_retries
_.soft_time_limit
_.time_limit

# Outbox topic payloads: msgspec fields, filled when a message is decoded ("from" on the wire for from_).
_.from_
_.to
_.boundary
_.purpose_changed

# Protocols of other libraries: io (writable), zipfile (ZipInfo.compress_type), logging (LogRecord.exc_text),
# Django (HttpResponse._has_been_logged, Model._state.db), PyYAML (increase_indent's indentless), scim2-models
# (schema extension required), and the SCIM filter visitor's visit_<node> methods.
_.writable
_.compress_type
_.exc_text
_._has_been_logged
_.db
_.indentless
_.required
_.visit_logical_expr
_.visit_not
_.visit_value_path
_.visit_present
_.visit_comparison

# The client package's public API, documented in client/README.md and used by applications, not by the package.
_.may_capture
_.filter_frame
_.filter_table
_.blob_key_id
_.ENVELOPE_FIELDS

# Service and library functions only the tests call today: the named state changes and helpers they set
# worlds up with (withdraw, terminate), the verifier and key rotation of consentry.signing, resuming a
# Merkle frontier, stopping the feed listener between tests, and the engine's reference use_window that a
# property test compares the fast path with.
_.consent_withdraw
_.employee_terminate
_.verify_jws
_.rotate_local_key
_.from_hex
_.stop_listener
_.use_window

# people.locks: the helpers services lock employees with, in one lock order for every writer; not every
# helper has a caller yet.
_.employee_lock_clause
_.employees_lock
