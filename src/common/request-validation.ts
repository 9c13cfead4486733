import { HttpStatus, ValidationPipe, type ValidationError } from '@nestjs/common';
import { getMetadataStorage } from 'class-validator';
import { GatewayError } from './gateway-error.js';

/** One field of a request that failed validation. */
export interface FieldProblem {
  /** Dotted path of the field (`language`, `phrases.0.boost`). */
  field: string;
  /**
   * `unknown`: the request sent a field the endpoint does not declare; `missing`: a required field
   * is absent or empty; `invalid`: the field's value breaks a rule.
   */
  kind: 'unknown' | 'missing' | 'invalid';
  /** What was wrong and what is accepted, for this field. */
  message: string;
  /** For `unknown`: the fields the endpoint declares. */
  accepted?: string[];
}

/**
 * A request whose fields failed validation (the global ValidationPipe): 400 VALIDATION_FAILED.
 * `message` is one string, the fields' messages joined with `; `; `errors` (public) lists them
 * one by one as `{field, message}` for clients that point at form fields.
 */
export class RequestValidationError extends GatewayError {
  readonly code = 'VALIDATION_FAILED';

  constructor(readonly problems: readonly FieldProblem[]) {
    super(problems.map((p) => p.message).join('; ') || 'the request is not valid', {
      status: HttpStatus.BAD_REQUEST,
      publicFields: { errors: problems.map(({ field, message }) => ({ field, message })) },
    });
  }
}

/** Constraints that say a value is absent: preferred over the others when the value is missing. */
const PRESENCE = ['isDefined', 'isNotEmpty'];
/** Type checks: when a value is present but of the wrong type, theirs is the message that matters. */
const TYPE_CHECKS = ['isString', 'isArray', 'isNumber', 'isInt', 'isBoolean', 'isObject'];
/** class-validator's constraint for nested objects, whose message ("each value in nested property…") says nothing useful. */
const NESTED = 'nestedValidation';
/** class-validator's constraint for a property the DTO does not declare (forbidNonWhitelisted). */
const UNKNOWN = 'whitelistValidation';

function metadataOf(target: object | undefined) {
  return target ? getMetadataStorage().getTargetValidationMetadatas(target.constructor, '', true, false) : [];
}

/** The properties a DTO class declares (any validation decorator), sorted. */
function declaredFields(target: object | undefined): string[] {
  return [...new Set(metadataOf(target).map((m) => m.propertyName))].sort();
}

/**
 * The one constraint whose message describes a field's problem best:
 * 1. a missing value: the presence check (isDefined, isNotEmpty) when there is one;
 * 2. a value of the wrong type: the type check ("phrases must be an array");
 * 3. otherwise the first rule declared on the property that has a message of its own (the DTO's
 *    words, with ranges and accepted values), else the first declared.
 * class-validator lists constraints bottom-up (the decorator nearest the property first).
 */
function chooseConstraint(error: ValidationError, missing: boolean): string {
  const failed = Object.keys(error.constraints ?? {});
  const presence = missing ? failed.find((k) => PRESENCE.includes(k)) : undefined;
  if (presence) return presence;
  const candidates = failed.filter((k) => k !== NESTED);
  if (candidates.length === 0) return failed[0];
  const type = missing ? undefined : candidates.find((k) => TYPE_CHECKS.includes(k));
  if (type) return type;
  const declared = [...candidates].reverse();
  const metadata = metadataOf(error.target).filter((m) => m.propertyName === error.property);
  const custom = declared.find((k) => metadata.some((m) => m.name === k && m.message !== undefined));
  return custom ?? declared[0];
}

/**
 * One problem per failing field, nested fields included (`phrases.0.boost`). Per field one
 * message: the unknown-field message names the accepted fields; otherwise the message of the
 * constraint chooseConstraint picks, after "<field> is required; " when the value is missing.
 */
export function fieldProblems(errors: readonly ValidationError[], parent = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const constraints = error.constraints ?? {};
    const keys = Object.keys(constraints);
    if (keys.includes(UNKNOWN)) {
      const accepted = declaredFields(error.target);
      problems.push({ field, kind: 'unknown', accepted, message: `unknown field '${field}'${accepted.length ? `; accepted fields: ${accepted.join(', ')}` : ''}` });
    } else if (keys.length > 0) {
      const missing = error.value === undefined || error.value === null || error.value === '';
      const key = chooseConstraint(error, missing);
      const raw = constraints[key];
      // Nested messages name only the property ("boost must be…"): give them the whole path.
      const rule = parent && raw.startsWith(`${error.property} `) ? `${field}${raw.slice(error.property.length)}` : parent ? `${field}: ${raw}` : raw;
      const message = missing && !PRESENCE.includes(key) ? `${field} is required; ${rule}` : rule;
      problems.push({ field, kind: missing ? 'missing' : 'invalid', message });
    }
    if (error.children?.length) problems.push(...fieldProblems(error.children, field));
  }
  return problems;
}

/**
 * The ValidationPipe of every route (createApp, and tests that build a partial app): DTO fields
 * only (`whitelist`, unknown ones refused), values transformed to their declared types, and every
 * failure answered as one {@link RequestValidationError}. Values are read to tell a missing field
 * from a wrong one but never copied into messages.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    validationError: { target: true, value: true },
    exceptionFactory: (errors: ValidationError[]) => new RequestValidationError(fieldProblems(errors)),
  });
}
