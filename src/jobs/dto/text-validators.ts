import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * U+0000 anywhere in a string. PostgreSQL refuses it in `text`/`varchar` columns and as `\u0000`
 * in `jsonb` ("invalid byte sequence for encoding UTF8: 0x00" / "unsupported Unicode escape
 * sequence"), so a value carrying one would fail only when it is written, after the upload was
 * stored: such values are refused by the DTO instead.
 */
const NUL = String.fromCharCode(0);

/** True when `value` is not a string, or a string without U+0000 (other validators judge the type). */
export function hasNoNul(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(hasNoNul);
  return typeof value !== 'string' || !value.includes(NUL);
}

/**
 * Property decorator: the string (or each string of an array) must not contain U+0000 (NUL).
 * The message starts with the field's name, as the OpenAI error filter needs for `param`:
 * `prompt must not contain NUL characters (U+0000); send plain text`.
 */
export function NoNulCharacters(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'noNulCharacters',
      validator: {
        validate: (value: unknown) => hasNoNul(value),
        defaultMessage: (args) => `${args?.property ?? 'the field'} must not contain NUL characters (U+0000); send plain text`,
      },
    },
    options,
  );
}
