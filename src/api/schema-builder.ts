// Tiny helpers for writing the API's OpenAPI v3 (structural) schema once, by hand, readably.
// The same objects generate the CRDs, the TypeScript types and feed the ajv validator.
import type { CelValidation } from './rules.js';

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean' | 'number';
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: string[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  additionalProperties?: Schema | boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: CelValidation[];
  /** Generator hint: name of the TypeScript interface emitted for this object. Stripped from CRDs. */
  'x-ts-type'?: string;
}

type Extra = Omit<Schema, 'type' | 'description'>;

export const str = (description: string, extra: Extra = {}): Schema => ({
  type: 'string',
  description,
  ...extra,
});
export const int = (description: string, extra: Extra = {}): Schema => ({
  type: 'integer',
  description,
  ...extra,
});
export const bool = (description: string, extra: Extra = {}): Schema => ({
  type: 'boolean',
  description,
  ...extra,
});
export const oneOf = (values: string[], description: string, extra: Extra = {}): Schema => ({
  type: 'string',
  description,
  enum: values,
  ...extra,
});
export const list = (items: Schema, description: string, extra: Extra = {}): Schema => ({
  type: 'array',
  description,
  items,
  ...extra,
});
export const obj = (
  tsType: string,
  description: string,
  properties: Record<string, Schema>,
  required: string[] = [],
  extra: Extra = {},
): Schema => ({
  type: 'object',
  description,
  properties,
  ...(required.length > 0 ? { required } : {}),
  'x-ts-type': tsType,
  ...extra,
});
export const stringMap = (description: string): Schema => ({
  type: 'object',
  description,
  additionalProperties: { type: 'string' },
});
